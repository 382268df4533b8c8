// The options the extension gives vscode-languageclient: how to start the server, which documents
// it serves, and what it is told at initialize. Types only from the library (erased at run time),
// so this builds, and is tested, without VS Code.
import type { Executable, LanguageClientOptions } from 'vscode-languageclient/node';

import type { ServerSettings } from './settings';

/** VS Code language ids of the languages ponder parses (agent/language.cpp). */
export const LANGUAGES = [
  'c',
  'cpp',
  'cuda-cpp',
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'rust',
  'go',
  'java',
] as const;

/** Files on disk only: the server keys documents by their path in the workspace. */
export function documentSelector(): { scheme: string; language: string }[] {
  return LANGUAGES.map((language) => ({ scheme: 'file', language }));
}

/** `ponder lsp` on stdio, from the first workspace folder. */
export function serverOptions(command: string, args: string[], cwd?: string): Executable {
  return { command, args, options: cwd === undefined ? {} : { cwd } };
}

/**
 * The client's options. `settings` is called at every start (restarts included), so a restart
 * sends the settings of that moment. `extra` holds what needs VS Code at run time (the output
 * channel, the error handler, middleware).
 */
export function clientOptions(settings: () => ServerSettings, extra: Partial<LanguageClientOptions> = {}): LanguageClientOptions {
  return {
    documentSelector: documentSelector(),
    initializationOptions: () => settings(),
    // Markdown from the model (hover, explanations) is shown as text, never run.
    markdown: { isTrusted: false, supportHtml: false },
    // Code actions are listed from the index at once; the model runs on resolve.
    progressOnInitialization: false,
    ...extra,
  };
}
