/**
 * objpool: a scalable lock-free pool of fixed-size objects for Node.js,
 * shareable across worker threads. See README.md.
 */
export { ObjectPool } from './pool';
export type { PoolOptions, PoolDescriptor, PoolStats, ReleaseInfo, ReleaseCallback } from './pool';
export { codes } from './errors';
export type { ErrorCode, ObjectPoolError } from './errors';
export * as net from './net';
export type { PooledReadOptions, WhenEmpty, OnRead } from './net';
