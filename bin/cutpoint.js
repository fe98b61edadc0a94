#!/usr/bin/env node
// The `cutpoint` executable: TypeScript sources run through tsx, so a clone needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
