// The reasoning panel's page: a list of recent results and the selected one's text, drawn by
// media/reasoning.js from the messages of panelModel.ts. Local resources only, scripts by nonce.

export interface PanelResources {
  /** The webview's `cspSource`. */
  cspSource: string;
  /** Webview URIs of media/reasoning.js and media/reasoning.css. */
  script: string;
  style: string;
  /** A fresh random nonce per page. */
  nonce: string;
}

export function panelHtml(r: PanelResources): string {
  const csp = [
    "default-src 'none'",
    `style-src ${r.cspSource}`,
    `script-src 'nonce-${r.nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${r.style}">
<title>Ponder: Reasoning</title>
</head>
<body>
<header>
  <select id="results" aria-label="Result"></select>
  <button id="open" title="Open as a markdown document">Open</button>
</header>
<pre id="text" class="empty" aria-live="polite">No reasoning yet. Run a ponder code action, or "Ponder: Ask about selection…".</pre>
<script nonce="${r.nonce}" src="${r.script}"></script>
</body>
</html>
`;
}

/** 32 hex characters from `random` (crypto.randomBytes in the extension). */
export function makeNonce(random: (n: number) => Uint8Array): string {
  return Array.from(random(16), (b) => b.toString(16).padStart(2, '0')).join('');
}
