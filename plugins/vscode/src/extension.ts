// The extension: starts `ponder lsp` through vscode-languageclient and adds what a reasoning
// model needs beyond stock LSP — the reasoning panel, the status-bar item (click to cancel), and
// "Ponder: Ask about selection…". The decisions live in the modules beside this one (tested in
// node); this file wires them to VS Code.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as vscode from 'vscode';
import {
  CancellationToken,
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  ResponseError,
  RevealOutputChannelOn,
  State,
} from 'vscode-languageclient/node';

import { askErrorMessage, askOutcome, askParams } from './ask';
import { clientOptions, LANGUAGES, serverOptions } from './clientOptions';
import { resolveLaunch } from './launch';
import { OPEN_SETTINGS, shownMessage } from './messages';
import { ServerCommand, type AskResult, type ReasoningParams, type ServerStatus, type ShowReasoningResult, type StatusParams } from './protocol';
import { isReasoningDocument, ReasoningStore } from './reasoning';
import { ReasoningPanel } from './reasoningPanel';
import { RestartPolicy } from './restartPolicy';
import { classifyChange, resolveSettings, serverSettings, type ResolvedSettings, type SettingsReader } from './settings';
import { formatServerStatus, StatusTracker } from './status';

/** The extension's own commands (the server's, `ponder.*` in protocol.ts, are registered by the client). */
const Command = {
  ask: 'ponder.askSelection',
  openReasoning: 'ponder.openReasoning',
  cancel: 'ponder.cancelRequest',
  restart: 'ponder.restartServer',
  serverStatus: 'ponder.showServerStatus',
  openSettings: 'ponder.openSettings',
} as const;

function settingsReader(): SettingsReader {
  const config = vscode.workspace.getConfiguration('ponder');
  return (key) => {
    const i = config.inspect(key);
    const set = i !== undefined && (i.globalValue !== undefined || i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined);
    return { value: config.get(key), set };
  };
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function openSettings(query = 'ponder'): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.openSettings', query);
}

class Ponder implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private settings: ResolvedSettings;
  private disposed = false;
  private readonly output = vscode.window.createOutputChannel('Ponder');
  private readonly store: ReasoningStore;
  private readonly tracker = new StatusTracker();
  private readonly restarts = new RestartPolicy();
  private readonly item = vscode.window.createStatusBarItem('ponder.status', vscode.StatusBarAlignment.Right, 100);
  private readonly panel: ReasoningPanel;
  private readonly subscriptions: { dispose(): unknown }[] = [];

  constructor(context: vscode.ExtensionContext) {
    this.settings = resolveSettings(settingsReader());
    this.store = new ReasoningStore(vscode.workspace.getConfiguration('ponder').get<number>('reasoning.keep', 20));
    this.panel = new ReasoningPanel(context.extensionUri, this.store, (id) => void this.openAsDocument(id));
    this.item.name = 'Ponder';
    this.updateStatus();
    this.item.show();
    this.subscriptions.push(
      this.output,
      this.item,
      vscode.window.registerWebviewViewProvider(ReasoningPanel.viewId, this.panel, { webviewOptions: { retainContextWhenHidden: true } }),
      vscode.commands.registerCommand(Command.ask, () => this.ask()),
      vscode.commands.registerCommand(Command.openReasoning, (id?: unknown) =>
        this.panel.reveal(typeof id === 'string' ? id : undefined, false),
      ),
      vscode.commands.registerCommand(Command.cancel, () => this.cancel()),
      vscode.commands.registerCommand(Command.restart, () => this.restart()),
      vscode.commands.registerCommand(Command.serverStatus, () => this.showServerStatus()),
      vscode.commands.registerCommand(Command.openSettings, (query?: unknown) => openSettings(typeof query === 'string' ? query : 'ponder')),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('ponder')) void this.onConfigurationChanged();
      }),
    );
  }

  // ---- the client ----

  async start(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const launch = resolveLaunch(this.settings.launch, {
      pathVariable: process.env.PATH ?? '',
      home: os.homedir(),
      workspaceFolder: folder,
      isExecutable,
    });
    if (!launch.ok) {
      this.tracker.onServer('stopped', launch.message);
      this.updateStatus();
      const choice = await vscode.window.showErrorMessage(launch.message, OPEN_SETTINGS);
      if (choice === OPEN_SETTINGS) await openSettings('ponder.path');
      return;
    }
    this.output.appendLine(`starting ${launch.command} ${launch.args.join(' ')}`);
    const client = new LanguageClient(
      'ponder',
      'Ponder',
      serverOptions(launch.command, launch.args, folder),
      clientOptions(() => serverSettings(settingsReader()), {
        outputChannel: this.output,
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        errorHandler: {
          error: () => ({ action: ErrorAction.Continue }),
          closed: async () => {
            const decision = this.restarts.onCrash(Date.now());
            if (this.isDisposed()) return { action: CloseAction.DoNotRestart, handled: true };
            if (!decision.restart) {
              this.tracker.onServer('stopped', decision.message);
              this.updateStatus();
              return { action: CloseAction.DoNotRestart, message: decision.message };
            }
            this.output.appendLine(`ponder lsp stopped; starting it again in ${decision.delayMs / 1000} s`);
            this.tracker.onServer('starting');
            this.updateStatus();
            await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
            return this.isDisposed() ? { action: CloseAction.DoNotRestart, handled: true } : { action: CloseAction.Restart, handled: true };
          },
        },
        middleware: {
          executeCommand: async (command, args, next) => {
            const result: unknown = await next(command, args);
            if (command === ServerCommand.showReasoning && isShowReasoningResult(result)) await this.panel.reveal(result.resultId, false);
            return result;
          },
          window: {
            // ponder.showReasoning's markdown file: the panel shows it instead.
            showDocument: async (params, next) => {
              if (isReasoningDocument(params.uri)) return { success: true };
              const shown = await next(params, CancellationToken.None);
              return shown instanceof ResponseError ? { success: false } : shown;
            },
          },
        },
      }),
    );
    client.onNotification('ponder/reasoning', (p: ReasoningParams) => {
      this.panel.onEvents(this.store.apply(p));
      this.tracker.onReasoning(p);
      this.updateStatus();
    });
    client.onNotification('ponder/status', (p: StatusParams) => {
      this.tracker.onStatus(p);
      this.updateStatus();
    });
    client.onNotification('window/showMessage', (p: { type: number; message: string }) => void this.showServerMessage(p.type, p.message));
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.tracker.onServer('running');
      else if (e.newState === State.Starting) this.tracker.onServer('starting');
      else {
        this.panel.onEvents(this.store.stopAll());
        this.tracker.onServer('stopped');
      }
      this.updateStatus();
    });
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      const message = `ponder: the language server did not start: ${error instanceof Error ? error.message : String(error)}`;
      this.tracker.onServer('stopped', message);
      this.updateStatus();
      void vscode.window.showErrorMessage(message);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) await client.stop().catch(() => undefined);
    await client?.dispose().catch(() => undefined);
  }

  private async restart(): Promise<void> {
    this.restarts.reset();
    await this.stop();
    this.settings = resolveSettings(settingsReader());
    await this.start();
  }

  private async onConfigurationChanged(): Promise<void> {
    const config = vscode.workspace.getConfiguration('ponder');
    this.panel.onEvents(this.store.setKeep(config.get<number>('reasoning.keep', 20)));
    const next = resolveSettings(settingsReader());
    const change = classifyChange(this.settings, next);
    this.settings = next;
    if (change === 'restart' || !this.client) return this.restart();
    if (change === 'notify' && this.client.state === State.Running) {
      await this.client.sendNotification('workspace/didChangeConfiguration', { settings: { ponder: next.server } });
    }
  }

  private running(): LanguageClient | undefined {
    if (this.client?.state === State.Running) return this.client;
    void vscode.window.showWarningMessage('ponder: the language server is not running ("Ponder: Restart Server" starts it).');
    return undefined;
  }

  // ---- commands ----

  private async ask(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !(LANGUAGES as readonly string[]).includes(editor.document.languageId) || editor.document.uri.scheme !== 'file') {
      void vscode.window.showWarningMessage('ponder: open a source file (C, C++, Python, JavaScript, TypeScript, Rust, Go or Java) and select code to ask about.');
      return;
    }
    const client = this.running();
    if (!client) return;
    const instruction = await vscode.window.showInputBox({
      title: 'Ponder: Ask about selection',
      prompt: 'What should ponder do with the selected code (or the definition at the cursor)?',
      placeHolder: 'e.g. "use a range-for loop", "handle the empty vector", "why can this overflow?"',
      ignoreFocusOut: true,
    });
    const params = askParams(
      client.code2ProtocolConverter.asUri(editor.document.uri),
      client.code2ProtocolConverter.asRange(editor.selection),
      instruction,
    );
    if (!params) return;
    void this.panel.reveal();
    try {
      const result = (await client.sendRequest(ExecuteCommandRequest.type, {
        command: ServerCommand.ask,
        arguments: [params],
      })) as AskResult;
      const outcome = askOutcome(result);
      if (outcome.kind === 'answer') {
        await this.panel.reveal(outcome.resultId, false);
        return;
      }
      const show = outcome.kind === 'applied' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
      if ((await show(outcome.message, 'Show Reasoning')) === 'Show Reasoning') await this.panel.reveal(outcome.resultId, false);
    } catch (error) {
      const code = error instanceof ResponseError ? error.code : undefined;
      const message = askErrorMessage(code, error instanceof Error ? error.message : String(error));
      if (message) void vscode.window.showErrorMessage(message);
    }
  }

  private async cancel(): Promise<void> {
    const client = this.running();
    if (client) await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommand.cancel, arguments: [] });
  }

  private async showServerStatus(): Promise<void> {
    const client = this.running();
    if (!client) return;
    const s = (await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommand.status, arguments: [] })) as ServerStatus;
    void vscode.window.showInformationMessage(formatServerStatus(s));
  }

  private async openAsDocument(id: string): Promise<void> {
    const entry = this.store.get(id);
    if (!entry) return;
    const content = entry.markdown ?? `# ${entry.title}\n\n## Reasoning\n\n${entry.text}\n`;
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content });
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  private async showServerMessage(type: number, text: string): Promise<void> {
    const m = shownMessage(type, text);
    const show =
      m.level === 'error' ? vscode.window.showErrorMessage : m.level === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    const choice = await show(m.text, ...m.actions);
    if (choice === OPEN_SETTINGS) await openSettings(m.settingsQuery);
  }

  private updateStatus(): void {
    const v = this.tracker.view();
    this.item.text = v.text;
    this.item.tooltip = v.tooltip;
    this.item.backgroundColor = v.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    const commands = {
      cancel: Command.cancel,
      openSettings: Command.openSettings,
      restart: Command.restart,
      showReasoning: Command.openReasoning,
    } as const;
    this.item.command = v.action === 'openSettings' ? { title: 'Open Settings', command: Command.openSettings, arguments: ['ponder.model'] } : commands[v.action];
  }

  /** A method, not the field: a crash handler waits, and the extension may be gone after. */
  private isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    for (const d of this.subscriptions) d.dispose();
  }
}

function isShowReasoningResult(r: unknown): r is ShowReasoningResult {
  return typeof r === 'object' && r !== null && typeof (r as ShowReasoningResult).resultId === 'string';
}

let ponder: Ponder | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  ponder = new Ponder(context);
  context.subscriptions.push(ponder);
  await ponder.start();
}

export async function deactivate(): Promise<void> {
  await ponder?.stop();
  ponder = undefined;
}
