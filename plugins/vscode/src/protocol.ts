// What ponder's language server says beyond the LSP specification (README, "ponder lsp"): its
// notifications, the commands it runs through workspace/executeCommand and what they answer.
// Plain types only; nothing here needs VS Code.

/** `ponder/reasoning`: the model's reasoning for one result, streamed while it thinks. */
export interface ReasoningParams {
  /** The result's id (what `ponder.showReasoning` takes). */
  id: string;
  /** The document the request is about (absent on `ponder.showReasoning`'s notification). */
  uri?: string;
  /** What is being done, e.g. "Ponder: improve `sum`". */
  title: string;
  /** Reasoning written since the previous notification of this id. */
  text: string;
  /** True on the last notification of a request. */
  done: boolean;
  /** The whole result as markdown (summary, rationale, reasoning), sent by `ponder.showReasoning`. */
  markdown?: string;
}

/** The model's state, as `ponder/status` names it. */
export type ModelState = 'loading' | 'idle' | 'thinking' | 'failed' | 'unloaded';

/** `ponder/status`. */
export interface StatusParams {
  state: ModelState;
  /** loading: the step; idle: the model; thinking: the request's title; failed: why. */
  detail?: string;
  /** thinking: tokens written so far in the request. */
  tokens?: number;
  /** thinking: the decode speed. */
  tokensPerSecond?: number;
}

/** The commands the server runs (its executeCommandProvider). */
export const ServerCommand = {
  run: 'ponder.run',
  ask: 'ponder.ask',
  showReasoning: 'ponder.showReasoning',
  cancel: 'ponder.cancel',
  status: 'ponder.status',
} as const;

export interface Position {
  line: number;
  character: number;
}
export interface Range {
  start: Position;
  end: Position;
}

/** `ponder.ask`'s argument. */
export interface AskParams {
  uri: string;
  range: Range;
  instruction: string;
}

/** `ponder.ask` answers one of these: an edit sent through workspace/applyEdit, or prose. */
export interface AskEditResult {
  applied: boolean;
  resultId: string;
  summary: string;
}
export interface AskAnswerResult {
  resultId: string;
  markdown: string;
}
export type AskResult = AskEditResult | AskAnswerResult;

/** `ponder.showReasoning`'s answer. */
export interface ShowReasoningResult {
  resultId: string;
  markdown: string;
}

/** `ponder.status`'s answer. */
export interface ServerStatus {
  model: string;
  running: boolean;
  queued: number;
  indexReady: boolean;
}

/** JSON-RPC error codes the server answers with. */
export const ErrorCode = {
  requestCancelled: -32800,
  requestFailed: -32803,
} as const;
