#!/usr/bin/env bash
# Vendor the JavaScript the built book needs, so that it renders with no network.
#
# Produced by the build, not committed: `npm pack` fetches each package from the npm registry and
# the files the pages load are copied into assets/vendor/ (served as _static/vendor/ in the book):
#   require.js            requirejs 2.3.6       loads the widget manager and bertviz's modules
#   html-manager/         @jupyter-widgets/html-manager 1.0.15 (ipywidgets 8 state), with fonts
#   d3.min.js             d3 5.7.0              the version bertviz's views are written for
#   jquery.min.js         jquery 2.2.4          bertviz asks for jquery 2.x
#   mathjax/              mathjax 3.2.2 (es5)   formulas, fonts included
# If npm is missing or the registry cannot be reached, the book still builds, with CDN URLs, and
# this script says loudly that the book will need the network.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=assets/vendor
PACKAGES=(requirejs@2.3.6 @jupyter-widgets/html-manager@1.0.15 d3@5.7.0 jquery@2.2.4 mathjax@3.2.2)
STAMP="$DEST/.complete-2-$(echo "${PACKAGES[*]}" | sha256sum | cut -c1-12)"
[ -f "$STAMP" ] && exit 0

warn() {
  echo "WARNING: $1 The book will load MathJax, require.js, the widget manager and d3 from CDNs:" \
       "it builds, but it needs the network to show formulas, widgets and attention views." >&2
  exit 0
}
command -v npm >/dev/null 2>&1 || warn "npm was not found (install Node.js to vendor the JavaScript)."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "${PACKAGES[@]}" >/dev/null 2>"$tmp/npm.log") \
  || warn "npm pack failed ($(tail -n 1 "$tmp/npm.log"))."
for tarball in "$tmp"/*.tgz; do
  name=$(basename "$tarball" .tgz)
  mkdir -p "$tmp/$name" && tar -xzf "$tarball" -C "$tmp/$name"
done

rm -rf "$DEST.part" && mkdir -p "$DEST.part"
cp "$tmp"/requirejs-*/package/require.js "$DEST.part/require.js"
mkdir -p "$DEST.part/html-manager"  # embed-amd.js and the icon fonts its CSS refers to
cp "$tmp"/jupyter-widgets-html-manager-*/package/dist/{embed-amd.js,*.woff,*.woff2,*.ttf,*.eot,*.svg} \
  "$DEST.part/html-manager/"
cp "$tmp"/d3-*/package/dist/d3.min.js "$DEST.part/d3.min.js"
cp "$tmp"/jquery-*/package/dist/jquery.min.js "$DEST.part/jquery.min.js"
cp -r "$tmp"/mathjax-*/package/es5 "$DEST.part/mathjax"
rm -rf "$DEST" && mv "$DEST.part" "$DEST"
touch "$STAMP"
echo "vendored for offline use: ${PACKAGES[*]}"
