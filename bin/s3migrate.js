#!/usr/bin/env node
// Executable shim: the program lives in dist/ (built from src/ by `npm run build`).
import module from 'node:module';

// From Node 22.1, keep the code Node compiles for the modules it loads (the AWS SDK above all) in a cache on
// disk (NODE_COMPILE_CACHE, else node-compile-cache in the temporary directory), so that later starts skip
// compiling it: ~40 ms of CPU per process on Node 24 here, and a copy is at least two (catalog, copy).
// Node 20 has no such cache; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
module.enableCompileCache?.();
const { main } = await import('../dist/cli/main.js');

main(process.argv);
