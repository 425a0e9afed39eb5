#!/usr/bin/env node
// The `greenroom` command: runs the built server (`dist/`). From the sources, use bin/greenroom-dev.mjs.
import '../dist/cli/main.js';
