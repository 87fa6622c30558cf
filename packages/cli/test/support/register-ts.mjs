// `node --import ./test/support/register-ts.mjs bin/keyport.mjs ...` runs the CLI from source.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
