// placeholder until scripts/build-sdk copies the SDK bundle here
