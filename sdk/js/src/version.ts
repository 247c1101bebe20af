/** SDK_VERSION is sent at login as sdk_version; keep it equal to package.json's version. */
export const SDK_VERSION = 'liveim-js/0.1.0';
