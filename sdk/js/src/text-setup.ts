/**
 * Installs the UTF-8 fallback for Protobuf-ES before any generated code
 * runs (the generated files decode their descriptors when they load). The
 * entry points import this module first.
 */
import { ensureTextEncoding } from './text.js';

ensureTextEncoding();
