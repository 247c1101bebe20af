/** Reconnect delays: exponential, capped, with jitter. */
import type { ImReconnectOptions } from './types.js';

/** ReconnectPolicy is ImReconnectOptions with its defaults applied. */
export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
}

/** reconnectPolicy applies the defaults: 500 ms doubling to 30 s, no attempt limit. */
export function reconnectPolicy(o: ImReconnectOptions | undefined): ReconnectPolicy {
  return {
    initialDelayMs: o?.initialDelayMs ?? 500,
    maxDelayMs: o?.maxDelayMs ?? 30_000,
    maxAttempts: o?.maxAttempts ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * backoffDelay is the wait before reconnect attempt n (1-based): the
 * initial delay doubled n-1 times, capped, then scaled by a random factor
 * in [0.5, 1) so that many clients dropped together do not return together.
 */
export function backoffDelay(p: ReconnectPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(p.maxDelayMs, p.initialDelayMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(exp * (0.5 + random() / 2));
}
