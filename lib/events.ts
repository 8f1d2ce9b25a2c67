// Library events on node:diagnostics_channel, for APM agents and services:
// published only while someone subscribes (`hasSubscribers`, a JS property
// read: no native call, nothing on the pop/push path otherwise). The
// messages' types are in lib/event-types.ts.
import dc = require('node:diagnostics_channel');

/** The channel names, for `diagnostics_channel.subscribe(name, fn)`. */
export const channels = Object.freeze({
  /** A pool was made (`{ pool, name, attached: false }`) or attached in this thread (`attached: true`). */
  created: 'objpool:pool:created',
  /** close() was called in this thread and won (`{ pool, name }`): the pool is closed in every thread. */
  closed: 'objpool:pool:closed',
  /** pop(), acquire(), lease() or popAsync()'s first try found the pool empty (`{ pool, name }`). */
  exhausted: 'objpool:pool:exhausted',
  /** A leak was reported (`{ pool, name, report }`). */
  leak: 'objpool:pool:leak',
  /** A popAsync()/acquireAsync() gave up on its timeout (`{ pool, name, timeout }`). */
  waitTimeout: 'objpool:wait:timeout',
} as const);

/** @internal */
export const created = dc.channel(channels.created);
/** @internal */
export const closed = dc.channel(channels.closed);
/** @internal */
export const exhausted = dc.channel(channels.exhausted);
/** @internal */
export const leak = dc.channel(channels.leak);
/** @internal */
export const waitTimeout = dc.channel(channels.waitTimeout);
