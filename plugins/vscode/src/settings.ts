// The extension's settings (package.json "contributes.configuration", all under "ponder.") and
// what the server gets of them.
//
// Only settings the user set (in user, workspace or folder settings) reach the server: the
// server's own defaults and the workspace's .ponder.json apply to the rest, as they do for every
// other editor. Nothing here needs VS Code: the extension passes a reader over its configuration.

/** One setting as VS Code's `WorkspaceConfiguration.inspect` reports it, reduced to what matters. */
export interface SettingValue {
  /** The effective value (the default when not set). */
  value: unknown;
  /** True when the user, workspace or folder settings set it. */
  set: boolean;
}
export type SettingsReader = (key: string) => SettingValue;

/**
 * The settings the server reads: the extension's key (under "ponder.") → the path of the key in
 * the server's settings object (README, "ponder lsp").
 */
export const SERVER_SETTINGS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['model', ['model']],
  ['backend', ['backend']],
  ['context', ['context']],
  ['promptBudget', ['promptBudget']],
  ['reasoningBudget', ['reasoningBudget']],
  ['maxTokens', ['maxTokens']],
  ['temperature', ['temperature']],
  ['codeActions.enabled', ['features', 'codeActions']],
  ['hover.enabled', ['features', 'hover']],
  ['hover.waitsForModel', ['hoverWaitsForModel']],
  ['suggestions.onSave', ['features', 'suggestions']],
  ['suggestions.debounceMs', ['suggestionDebounceMs']],
  ['suggestions.perFile', ['suggestionsPerFile']],
  ['suggestions.perHour', ['suggestionsPerHour']],
  ['idleUnloadSeconds', ['idleUnloadSeconds']],
];

/** Settings that change how the server is started: a change restarts it. */
export const LAUNCH_SETTINGS = ['path', 'logLevel'] as const;

/** The server's settings object (initializationOptions, didChangeConfiguration's `ponder`). */
export type ServerSettings = { [key: string]: unknown };

/** The server settings the user set. An empty model name means "let ponder find one": not sent. */
export function serverSettings(read: SettingsReader): ServerSettings {
  const out: ServerSettings = {};
  for (const [key, path] of SERVER_SETTINGS) {
    const { value, set } = read(key);
    if (!set || value === undefined) continue;
    if (key === 'model' && (typeof value !== 'string' || value.trim() === '')) continue;
    let node = out;
    for (const part of path.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
      node = node[part] as ServerSettings;
    }
    node[path[path.length - 1]] = key === 'model' ? (value as string).trim() : value;
  }
  return out;
}

/** How the server is started: the `ponder.path` and `ponder.logLevel` settings. */
export interface LaunchSettings {
  path: string;
  logLevel: string;
}

export function launchSettings(read: SettingsReader): LaunchSettings {
  const path = read('path').value;
  const logLevel = read('logLevel').value;
  return {
    path: typeof path === 'string' && path.trim() !== '' ? path.trim() : 'ponder',
    logLevel: typeof logLevel === 'string' && logLevel !== '' ? logLevel : 'warn',
  };
}

/** Everything the extension resolves from its configuration at one moment. */
export interface ResolvedSettings {
  launch: LaunchSettings;
  server: ServerSettings;
}

export function resolveSettings(read: SettingsReader): ResolvedSettings {
  return { launch: launchSettings(read), server: serverSettings(read) };
}

/**
 * What a configuration change asks for: nothing; a didChangeConfiguration with the new settings;
 * or a restart — when the launch changes, or when a setting was removed (the server applies the
 * keys it is sent, so the only way back to its default or to .ponder.json is a fresh start).
 */
export type ConfigurationChange = 'none' | 'notify' | 'restart';

export function classifyChange(before: ResolvedSettings, after: ResolvedSettings): ConfigurationChange {
  if (before.launch.path !== after.launch.path || before.launch.logLevel !== after.launch.logLevel) return 'restart';
  const a = flatten(before.server);
  const b = flatten(after.server);
  for (const key of a.keys()) if (!b.has(key)) return 'restart';
  for (const [key, value] of b) if (a.get(key) !== value) return 'notify';
  return 'none';
}

function flatten(s: ServerSettings, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) flatten(v as ServerSettings, `${prefix}${k}.`, out);
    else out.set(prefix + k, JSON.stringify(v));
  }
  return out;
}
