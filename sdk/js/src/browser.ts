/**
 * Entry of the browser IIFE bundle (dist/liveim-im.iife.js): the whole
 * API as one namespace object. The bundle's footer (scripts/build.mjs)
 * publishes it as window.AliVCInteraction (what the hosted SDK's samples
 * read) and window.LiveIM, and, when the file is loaded as a CommonJS
 * module (a WeChat mini-program's require), as module.exports.
 */
export * from './index.js';
