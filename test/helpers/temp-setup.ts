/** Setup file of both vitest projects: a test file's temporary directories go when its tests end (temp.ts). */
import { afterAll } from 'vitest';
import { removeTempDirs } from './temp.ts';

afterAll(() => {
  removeTempDirs();
});
