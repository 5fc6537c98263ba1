#!/usr/bin/env node
// Checks an image's build arguments against the component registry
// (services/contracts/src/components.ts, built): WORKSPACE must be a component's workspace and
// PORT that component's port. The Dockerfile runs it before building; exits 2 with the reason.
//
//   node scripts/image-args.js <WORKSPACE> <PORT>
import { COMPONENTS } from '@ordersaga/contracts';

const [workspace, port] = process.argv.slice(2);
const components = Object.entries(COMPONENTS);
const found = components.find(([, spec]) => spec.workspace === workspace);
if (!found) {
  const known = components.map(([, spec]) => spec.workspace).join(', ');
  console.error(`--build-arg WORKSPACE must be one of ${known}; got "${workspace ?? ''}"`);
  process.exit(2);
}
const [name, { port: want }] = found;
if (port !== String(want)) {
  console.error(`--build-arg PORT must be ${want} for ${workspace} (the ${name} component); got "${port ?? ''}"`);
  process.exit(2);
}
console.log(`image-args: ${name} (${workspace}, port ${want})`);
