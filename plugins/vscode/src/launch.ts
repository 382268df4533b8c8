// Finding the ponder executable that `ponder.path` names, and the command line that starts the
// language server. The file system and environment are passed in, so tests need neither.
import * as path from 'node:path';

import type { LaunchSettings } from './settings';

export interface LaunchEnvironment {
  /** $PATH. */
  pathVariable: string;
  /** The user's home folder, for `~/`. */
  home: string;
  /** The first workspace folder's path, for `${workspaceFolder}` and relative paths. */
  workspaceFolder?: string;
  /** True when `file` exists, is a file and may be executed. */
  isExecutable: (file: string) => boolean;
}

export type Launch =
  | { ok: true; command: string; args: string[] }
  | { ok: false; message: string };

/** `ponder lsp` with the log level; the model travels in the settings, not on the command line. */
export function serverArgs(settings: LaunchSettings): string[] {
  return ['lsp', '--log-level', settings.logLevel];
}

/**
 * The executable: `ponder.path` with `~/` and `${workspaceFolder}` expanded; a relative path with
 * a slash is taken from the workspace folder; a bare name is looked up on $PATH. When none is
 * found, the message says what was tried and which setting to change.
 */
export function resolveLaunch(settings: LaunchSettings, env: LaunchEnvironment): Launch {
  let file = settings.path;
  if (file.includes('${workspaceFolder}')) {
    if (!env.workspaceFolder) {
      return { ok: false, message: `"ponder.path" (${settings.path}) names \${workspaceFolder}, but no folder is open.` };
    }
    file = file.split('${workspaceFolder}').join(env.workspaceFolder);
  }
  if (file === '~' || file.startsWith('~/')) file = path.join(env.home, file.slice(1));
  const args = serverArgs(settings);
  if (file.includes('/') || file.includes(path.sep)) {
    if (!path.isAbsolute(file) && env.workspaceFolder) file = path.resolve(env.workspaceFolder, file);
    if (env.isExecutable(file)) return { ok: true, command: file, args };
    return {
      ok: false,
      message: `The ponder executable was not found at ${file} ("ponder.path"). Build it (build/ponder in a clone) or set "ponder.path" to where it is.`,
    };
  }
  for (const dir of env.pathVariable.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, file);
    if (env.isExecutable(candidate)) return { ok: true, command: candidate, args };
  }
  return {
    ok: false,
    message: `The ponder executable "${file}" was not found on PATH. Install it, or set "ponder.path" to its full path (build/ponder in a clone).`,
  };
}
