// The messages published on the channels of lib/events.ts.
import type { ObjectPool } from './pool';
import type { LeakReport } from './leaks';

export interface PoolEvent {
  pool: ObjectPool;
  name: string | null;
}
export interface CreatedEvent extends PoolEvent { attached: boolean }
export interface LeakEvent extends PoolEvent { report: LeakReport }
export interface WaitTimeoutEvent extends PoolEvent { timeout: number }
