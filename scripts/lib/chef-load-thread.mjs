// The entry of chef-load.ts's thread: a worker thread does not inherit the
// tsx loader this process runs under, so it registers it, then loads the
// thread's TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./chef-load-thread.ts');
