#!/usr/bin/env node
// The `ordersaga` command: what `npm run build` compiled from src/main.ts. A file of its own, so
// that npm links the command at install time, before the first build.
import '../dist/main.js';
