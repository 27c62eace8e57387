// The sign-in panel: asks for an API key, checks it with a call the page needs anyway, and keeps
// it in this tab's sessionStorage once the service accepted it.

import { h, clear } from './dom.js';
import { ApiError, clearKey, getKey, setKey } from './api.js';

/** The message for a key the service refused: what the page says, and what the service said. */
export function refusalMessage(error) {
  if (error instanceof ApiError && error.status === 401) {
    return { headline: 'This API key was not accepted.', detail: error.message };
  }
  if (error instanceof ApiError && error.status === 403) {
    return { headline: 'This API key may not do this.', detail: error.message };
  }
  return { headline: 'The service could not be asked.', detail: error?.message || String(error) };
}

/**
 * Show the sign-in form in ``container`` until ``check(key)`` resolves; the key is kept only then.
 * ``notice`` (optional) is shown above the form, e.g. why the previous key was dropped.
 * Resolves with what ``check`` resolved to.
 */
export function signIn(container, check, notice = null) {
  return new Promise((resolve) => {
    const input = h('input', {
      type: 'password',
      id: 'api-key',
      name: 'api-key',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      placeholder: 'ak_…',
      'aria-describedby': 'signin-help',
    });
    const button = h('button', { type: 'submit', class: 'primary', id: 'signin-submit' }, 'Sign in');
    const message = h('div', { class: 'signin-error', id: 'signin-error', role: 'alert', hidden: true });
    const showRefusal = (refusal) => {
      clear(message).append(h('strong', {}, refusal.headline), ' ', h('span', { class: 'server-message', dir: 'auto' }, refusal.detail));
      message.hidden = false;
    };
    const form = h(
      'form',
      { class: 'signin-form', id: 'signin-form' },
      h('h1', {}, 'Sign in'),
      h('label', { for: 'api-key' }, 'API key'),
      h('div', { class: 'signin-row' }, input, button),
      message,
      h(
        'p',
        { class: 'hint', id: 'signin-help' },
        'The key stays in this browser tab only (session storage): it is forgotten when the tab is closed, and never stored in a cookie.',
      ),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) {
        showRefusal({ headline: 'Enter an API key.', detail: '' });
        return;
      }
      button.disabled = true;
      message.hidden = true;
      // The page's calls read the tab's key, so it is set for the check and dropped again if refused.
      setKey(key);
      try {
        const result = await check(key);
        clear(container);
        container.hidden = true;
        resolve(result);
      } catch (error) {
        clearKey();
        showRefusal(refusalMessage(error));
        input.select();
      } finally {
        button.disabled = false;
      }
    });
    clear(container).append(form);
    if (notice) showRefusal(notice);
    container.hidden = false;
    input.focus();
  });
}

/** The key of this tab, or the one the person signs in with; ``check`` is the page's first call. */
export async function withKey(container, check) {
  const key = getKey();
  if (key) {
    try {
      return await check(key);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      clearKey();
      return signIn(container, check, refusalMessage(error));
    }
  }
  return signIn(container, check);
}

export function signOut() {
  clearKey();
  location.assign('/');
}
