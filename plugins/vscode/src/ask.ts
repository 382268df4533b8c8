// "Ponder: Ask about selection…": the `ponder.ask` request, and what to tell the user about its
// answer. The edit itself reaches VS Code through workspace/applyEdit; its change annotation
// needs confirmation, so VS Code opens the refactor preview before anything changes.

import { ErrorCode, type AskParams, type AskResult, type Range } from './protocol';

/** The request's argument, or why there is none (a blank instruction: nothing to ask). */
export function askParams(uri: string, range: Range, instruction: string | undefined): AskParams | undefined {
  const text = instruction?.trim() ?? '';
  if (text === '') return undefined;
  return { uri, range, instruction: text };
}

export type AskOutcome =
  | { kind: 'applied'; resultId: string; message: string }
  | { kind: 'discarded'; resultId: string; message: string }
  | { kind: 'answer'; resultId: string; markdown: string };

export function askOutcome(result: AskResult): AskOutcome {
  if ('applied' in result) {
    return result.applied
      ? { kind: 'applied', resultId: result.resultId, message: `ponder: ${result.summary}` }
      : { kind: 'discarded', resultId: result.resultId, message: `ponder: the edit was not applied (${result.summary})` };
  }
  return { kind: 'answer', resultId: result.resultId, markdown: result.markdown };
}

/**
 * The message for a failed request, or undefined when there is nothing to say: a cancelled
 * request was cancelled by the user; "no valid edit" is shown by the server itself.
 */
export function askErrorMessage(code: number | undefined, message: string): string | undefined {
  if (code === ErrorCode.requestCancelled || code === ErrorCode.requestFailed) return undefined;
  return message.startsWith('ponder') ? message : `ponder: ${message}`;
}
