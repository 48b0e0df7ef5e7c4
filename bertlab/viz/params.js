// The parameter counter of bertlab.viz.params.param_counter, inlined into the page it returns,
// so the sliders work with no kernel (Jupyter, Colab and the static HTML book).

// The exact count of bertlab.bert.BertModel (as bertlab.params.count gives it) and the notes'
// estimate V·H + 12·L·H² (bertlab.params.notes_estimate). I = 4H, P = 512 positions, S = 2 segments.
function bertlabCount(V, H, L, A) {
  const I = 4 * H, P = 512, S = 2;
  const embeddings = V * H + P * H + S * H + 2 * H;
  const attention = 4 * H * H + 4 * H;
  const ffn = 2 * H * I + I + H;
  const layer = attention + 2 * H + ffn + 2 * H;
  const pooler = H * H + H;
  return {total: embeddings + L * layer + pooler, seed: V * H + 12 * L * H * H,
          attention: attention, layer: layer, headSize: H % A === 0 ? H / A : null};
}

// Wire up one counter: its range inputs (data-p = L, H, A, V), the values shown beside them
// (data-v), the output lines (data-out) and the preset buttons (data-preset = "L,H,A").
function bertlabCounter(root) {
  if (!root) return;
  const fmt = n => n.toLocaleString("en-US");
  const get = p => Number(root.querySelector('input[data-p="' + p + '"]').value);
  const set = (sel, html) => { root.querySelector(sel).innerHTML = html; };
  function update() {
    const V = get("V"), H = get("H"), L = get("L"), A = get("A");
    for (const p of ["L", "H", "A", "V"]) set('span[data-v="' + p + '"]', fmt(get(p)));
    const c = bertlabCount(V, H, L, A);
    set('[data-out="exact"]', "exact count (bertlab.params.count): <b>" + fmt(c.total) + "</b>");
    set('[data-out="seed"]', "notes' formula V\u00b7H + 12\u00b7L\u00b7H\u00b2: <b>" +
        fmt(c.seed) + "</b>");
    const d = c.total - c.seed;
    set('[data-out="diff"]', "left out by the formula: " + fmt(d) + " (" +
        (100 * d / c.total).toFixed(2) + "%)");
    set('[data-out="heads"]', "attention block: 4H\u00b2 + 4H = " + fmt(c.attention) +
        " per layer, whatever A is; " + (c.headSize === null
          ? '<span style="color:#a33">H is not divisible by A: no such model (the count ' +
            'would not change, but the heads cannot split H evenly)</span>'
          : "head size H/A = " + c.headSize));
  }
  root.querySelectorAll("input").forEach(el => el.addEventListener("input", update));
  root.querySelectorAll("button[data-preset]").forEach(b => b.addEventListener("click", () => {
    const [L, H, A] = b.dataset.preset.split(",");
    root.querySelector('input[data-p="L"]').value = L;
    root.querySelector('input[data-p="H"]').value = H;
    root.querySelector('input[data-p="A"]').value = A;
    root.querySelector('input[data-p="V"]').value = 30522;
    update();
  }));
}
