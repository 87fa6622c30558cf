// `node --import ./test/support/trace.mjs`: see trace-hooks.mjs.
import { register } from 'node:module';

register('./trace-hooks.mjs', import.meta.url);
