# Sourced by scripts/demo.sh and scripts/test.sh: make the pinned uv available on PATH.
# Debian/Ubuntu's own Python refuses `pip install` outside a venv (PEP 668), so fall back to a
# user install that overrides that guard for this one tool.
UV_VERSION=0.13.8
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet "uv==$UV_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --user "uv==$UV_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "uv==$UV_VERSION"
fi
command -v uv >/dev/null 2>&1 || { echo "could not install uv==$UV_VERSION with pip" >&2; exit 1; }
