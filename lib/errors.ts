// Errors carry a stable string `code`, as Node's own do. Argument errors use
// Node's codes; pool errors use ERR_OBJPOOL_*.

/** Every `code` an objpool error can carry. */
export const codes = Object.freeze({
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  DOUBLE_PUSH: 'ERR_OBJPOOL_DOUBLE_PUSH',
  FOREIGN_BUFFER: 'ERR_OBJPOOL_FOREIGN_BUFFER',
  CLOSED: 'ERR_OBJPOOL_CLOSED',
  BAD_DESCRIPTOR: 'ERR_OBJPOOL_BAD_DESCRIPTOR',
  NOT_SHAREABLE: 'ERR_OBJPOOL_NOT_SHAREABLE',
  NO_MEMORY: 'ERR_OBJPOOL_NO_MEMORY',
  TIMEOUT: 'ERR_OBJPOOL_TIMEOUT',
  NO_ADDON: 'ERR_OBJPOOL_NO_ADDON',
  NO_PROM_CLIENT: 'ERR_OBJPOOL_NO_PROM_CLIENT',
  UNSUPPORTED: 'ERR_OBJPOOL_UNSUPPORTED',
  ACCESS: 'ERR_OBJPOOL_ACCESS',
  NOT_CREATOR: 'ERR_OBJPOOL_NOT_CREATOR',
} as const);

export type ErrorCode = (typeof codes)[keyof typeof codes];

/** The shape of every error objpool throws. */
export interface ObjectPoolError extends Error {
  code: ErrorCode;
}

function make<E extends Error>(Base: new (message: string) => E, code: ErrorCode, message: string): E & { code: ErrorCode } {
  const err = new Base(message) as E & { code: ErrorCode };
  err.code = code;
  return err;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `an instance of ${name}` : 'an object';
  }
  if (typeof value === 'string') return `type string ('${value.length > 25 ? value.slice(0, 25) + '...' : value}')`;
  return `type ${typeof value} (${String(value)})`;
}

export function invalidType(name: string, expected: string, value: unknown): TypeError {
  return make(TypeError, codes.INVALID_ARG_TYPE, `The "${name}" argument must be ${expected}. Received ${describe(value)}`);
}

export function outOfRange(name: string, range: string, value: unknown): RangeError {
  return make(RangeError, codes.OUT_OF_RANGE, `The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`);
}

export function invalidValue(name: string, reason: string, value: unknown): RangeError {
  return make(RangeError, codes.INVALID_ARG_VALUE, `The argument '${name}' ${reason}. Received ${describe(value)}`);
}

export function poolError(code: ErrorCode, message: string): Error {
  return make(Error, code, message);
}

/** A whole number in [min, max]; else the Node-style error. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer >= ${min} and <= ${max}`, value);
  return value;
}

/** A number in [min, max] (not NaN); else the Node-style error. */
export function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!(value >= min && value <= max)) throw outOfRange(name, `>= ${min} and <= ${max}`, value);
  return value;
}
