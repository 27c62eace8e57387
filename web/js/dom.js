// Small DOM helpers. Pages build their elements with these, never from HTML strings, so that
// titles, labels and cell values are always text (no markup from data ever reaches the page).

/**
 * h('button', {class: 'primary', onclick: fn, dataset: {id: 'x'}}, 'Save')
 * Properties that the element has (value, checked, disabled, hidden...) are set as properties,
 * everything else as attributes. Styles go through el.style (the page's CSP refuses style attributes
 * in markup).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (typeof value !== 'string' && name in el) el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function show(el, visible = true) {
  el.hidden = !visible;
  return el;
}
