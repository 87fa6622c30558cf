/** node-vault, loaded on the first call rather than at import (it costs more than start-up should). */
import { lazyPeer } from '@keyport/core';

export const nodeVault = lazyPeer('node-vault', 'hcvault', async () => (await import('node-vault')).default);
