// The reasoning panel's webview: draws the messages of src/panelModel.ts. Text only (textContent),
// never HTML from the model.
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const results = document.getElementById('results');
  const open = document.getElementById('open');
  const text = document.getElementById('text');
  let shown = null;

  function nearBottom() {
    const el = document.scrollingElement || document.documentElement;
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }
  function scrollDown() {
    const el = document.scrollingElement || document.documentElement;
    el.scrollTop = el.scrollHeight;
  }
  function setText(value, done) {
    const follow = nearBottom();
    text.classList.toggle('empty', value === '');
    text.classList.toggle('running', !done);
    text.textContent = value === '' ? (done ? '(no reasoning)' : 'Thinking…') : value;
    if (follow) scrollDown();
  }

  window.addEventListener('message', (event) => {
    const m = event.data;
    if (m.type === 'entries') {
      results.replaceChildren(
        ...m.entries.map((e) => {
          const option = document.createElement('option');
          option.value = e.id;
          option.textContent = (e.done ? '' : '⟳ ') + e.title;
          return option;
        }),
      );
      if (m.selected !== null) results.value = m.selected;
      open.disabled = m.selected === null;
    } else if (m.type === 'show') {
      shown = m.id;
      setText(m.text, m.done);
    } else if (m.type === 'append' && m.id === shown) {
      const follow = nearBottom();
      if (text.classList.contains('empty')) {
        text.textContent = '';
        text.classList.remove('empty');
      }
      text.append(m.text);
      if (follow) scrollDown();
    }
  });
  results.addEventListener('change', () => vscode.postMessage({ type: 'select', id: results.value }));
  open.addEventListener('click', () => {
    if (results.value) vscode.postMessage({ type: 'open', id: results.value });
  });
  vscode.postMessage({ type: 'ready' });
})();
