/**
 * A small typed event emitter (no dependency on Node's events module, so it
 * runs in browsers and mini-programs). A listener that throws is logged and
 * does not stop the others.
 */

/** Emitter is a typed event emitter with on/off/once. */
export class Emitter<E extends { [K in keyof E]: (...args: never[]) => void }> {
  #listeners = new Map<keyof E, Array<E[keyof E]>>();
  /** The app's listener of each wrapper once made. */
  #onceOf = new WeakMap<E[keyof E], E[keyof E]>();
  #onError: (event: string, err: unknown) => void;

  constructor(onError?: (event: string, err: unknown) => void) {
    this.#onError = onError ?? ((event, err) => console.error(`[liveim] ${event} listener threw`, err));
  }

  /** on adds a listener for event. */
  on<K extends keyof E>(event: K, listener: E[K]): this {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener);
    this.#listeners.set(event, list);
    return this;
  }

  /**
   * once adds a listener that is removed after its first call; off(event,
   * listener) removes it before that, as Node's emitter does.
   */
  once<K extends keyof E>(event: K, listener: E[K]): this {
    const wrapper = ((...args: Parameters<E[K]>) => {
      this.off(event, wrapper);
      (listener as (...a: Parameters<E[K]>) => void)(...args);
    }) as unknown as E[K];
    this.#onceOf.set(wrapper, listener);
    return this.on(event, wrapper);
  }

  /** off removes a listener, or every listener of event when none is given. */
  off<K extends keyof E>(event: K, listener?: E[K]): this {
    if (listener === undefined) {
      this.#listeners.delete(event);
      return this;
    }
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    const i = list.findIndex((l) => l === listener || this.#onceOf.get(l) === listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  /** removeAllListeners drops every listener of every event. */
  removeAllListeners(): this {
    this.#listeners.clear();
    return this;
  }

  /** listenerCount returns how many listeners event has. */
  listenerCount<K extends keyof E>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /**
   * emit calls event's listeners in order; it reports whether there were any.
   * @internal
   */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const l of [...list]) {
      try {
        (l as (...a: Parameters<E[K]>) => void)(...args);
      } catch (err) {
        this.#onError(String(event), err);
      }
    }
    return true;
  }
}
