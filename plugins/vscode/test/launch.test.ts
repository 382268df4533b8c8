import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveLaunch, type LaunchEnvironment } from '../src/launch';

function env(executables: string[], workspaceFolder?: string): LaunchEnvironment {
  return {
    pathVariable: '/usr/local/bin::/usr/bin',
    home: '/home/me',
    workspaceFolder,
    isExecutable: (f) => executables.includes(f),
  };
}
const args = ['lsp', '--log-level', 'warn'];

describe('finding the ponder executable', () => {
  it('looks a bare name up on PATH, in order', () => {
    assert.deepEqual(resolveLaunch({ path: 'ponder', logLevel: 'warn' }, env(['/usr/bin/ponder', '/usr/local/bin/ponder'])), {
      ok: true,
      command: '/usr/local/bin/ponder',
      args,
    });
  });

  it('expands ~/ and ${workspaceFolder}; a relative path is taken from the workspace folder', () => {
    assert.deepEqual(resolveLaunch({ path: '~/src/ponder/build/ponder', logLevel: 'warn' }, env(['/home/me/src/ponder/build/ponder'])), {
      ok: true,
      command: '/home/me/src/ponder/build/ponder',
      args,
    });
    assert.deepEqual(resolveLaunch({ path: '${workspaceFolder}/build/ponder', logLevel: 'info' }, env(['/w/build/ponder'], '/w')), {
      ok: true,
      command: '/w/build/ponder',
      args: ['lsp', '--log-level', 'info'],
    });
    assert.deepEqual(resolveLaunch({ path: 'build/ponder', logLevel: 'warn' }, env(['/w/build/ponder'], '/w')), {
      ok: true,
      command: '/w/build/ponder',
      args,
    });
  });

  it('says what was tried and names the setting when nothing is found', () => {
    const onPath = resolveLaunch({ path: 'ponder', logLevel: 'warn' }, env([]));
    assert.match(onPath.ok ? '' : onPath.message, /"ponder" was not found on PATH.*"ponder\.path"/);
    const at = resolveLaunch({ path: '/opt/ponder/bin/ponder', logLevel: 'warn' }, env([]));
    assert.match(at.ok ? '' : at.message, /not found at \/opt\/ponder\/bin\/ponder \("ponder\.path"\)/);
    const noFolder = resolveLaunch({ path: '${workspaceFolder}/build/ponder', logLevel: 'warn' }, env([]));
    assert.match(noFolder.ok ? '' : noFolder.message, /no folder is open/);
  });
});
