// Where the tests find the extension's files and the repository's sources (tests run from
// out/test/, compiled).
import * as path from 'node:path';

export const extensionRoot = path.resolve(__dirname, '..', '..');
export const repositoryRoot = path.resolve(extensionRoot, '..', '..');
