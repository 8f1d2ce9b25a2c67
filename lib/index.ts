/**
 * objpool: a scalable lock-free pool of fixed-size objects for Node.js,
 * shareable across worker threads. See README.md.
 */
export { ObjectPool } from './pool';
export { HandleChannel } from './channel';
export type { ChannelDescriptor, ChannelOptions, ChannelPool, ProcessChannelDescriptor } from './channel';
export type { PoolOptions, ViewOptions, PoolDescriptor, PoolStats, ReleaseInfo, ReleaseCallback, WaitOptions, Lease } from './pool';
export type { LeakOptions, LeakReport } from './leaks';
export { codes } from './errors';
/** node:diagnostics_channel channel names (see README, Operating it). */
export { channels } from './events';
export type { PoolEvent, CreatedEvent, LeakEvent, WaitTimeoutEvent } from './event-types';
/** The native addon file that was loaded (a prebuild, a source build, or OBJPOOL_ADDON). */
export { addonPath } from './native';
export type { ErrorCode, ObjectPoolError } from './errors';
export * as net from './net';
export type { PooledReadOptions, WhenEmpty, OnRead, OnData, PipeOptions, PooledPipe, PipeCallback } from './net';
export { PoolSet, PoolSetChannel } from './poolset';
export type { PoolSetOptions, PoolSetStats, PoolSetDescriptor, PoolSetChannelDescriptor, ProcessPoolSetDescriptor, ProcessPoolSetChannelDescriptor, SizeClass, Fallback } from './poolset';
