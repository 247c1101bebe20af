/**
 * Installs the UTF-8 fallback for Protobuf-ES before any generated code
 * runs (the generated files decode their descriptors when they load). The
 * entry points import this module first.
 *
 * This is the SDK's one module-level side effect (and only where the runtime
 * lacks TextEncoder/TextDecoder), so package.json's "sideEffects" names this
 * file: without that, the SDK's own build would drop the bare import. The
 * built entry points inline it and are side-effect free for bundlers: an app
 * that uses none of the SDK's exports does not need the codec either.
 */
import { ensureTextEncoding } from './text.js';

ensureTextEncoding();
