// The server's window/showMessage, with a link to the settings where one helps.

import { SERVER_SETTINGS } from './settings';

export const OPEN_SETTINGS = 'Open Settings';

export interface ShownMessage {
  /** 1 error, 2 warning, 3 info, 4 log (LSP MessageType). */
  level: 'error' | 'warning' | 'info';
  text: string;
  /** Buttons; OPEN_SETTINGS opens the settings at `settingsQuery`. */
  actions: string[];
  settingsQuery?: string;
}

export function shownMessage(type: number, text: string): ShownMessage {
  const level = type === 1 ? 'error' : type === 2 ? 'warning' : 'info';
  // No model found or loadable; a bad setting ("setting \"context\" must be ...").
  if (/name a model|"model" setting|no model/i.test(text)) {
    return { level, text, actions: [OPEN_SETTINGS], settingsQuery: 'ponder.model' };
  }
  const setting = /setting "([A-Za-z.]+)"/.exec(text);
  if (setting) {
    const known = SERVER_SETTINGS.find(([, path]) => path[path.length - 1] === setting[1]);
    return { level, text, actions: [OPEN_SETTINGS], settingsQuery: known ? `ponder.${known[0]}` : 'ponder' };
  }
  return { level, text, actions: [] };
}
