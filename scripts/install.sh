#!/usr/bin/env bash
# Builds berth and installs it: both binaries (berth and berth-shim, which
# berth starts its shims from when it sits beside it), the man pages and the
# bash, zsh and fish completions.
#
#   scripts/install.sh [--no-build] [PREFIX]      PREFIX defaults to /usr/local
#
# DESTDIR           stage into DESTDIR/PREFIX (for packaging) instead of PREFIX
# BERTH_INSTALL_PROFILE
#                   the cargo profile to build and install: dist (default:
#                   release code without debug info, see Cargo.toml), release
#                   (reuses quickstart.sh's build; keeps line tables), dev
# --no-build        install what is already built under
#                   ${CARGO_TARGET_DIR:-target}/PROFILE-DIR; no cargo run
#
# The first dist build compiles every crate once more into target/dist
# (several minutes on 2 cores); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
prefix=/usr/local
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    *) prefix=$arg ;;
  esac
done
profile=${BERTH_INSTALL_PROFILE:-dist}
# cargo puts the dev profile's output in debug/, every other profile's in its own name.
case "$profile" in
  dev) profile_dir=debug ;;
  *) profile_dir=$profile ;;
esac
bin_dir=${CARGO_TARGET_DIR:-target}/$profile_dir

if ((build)); then
  echo "+ cargo build --profile $profile --locked --bins"
  cargo build --profile "$profile" --locked --bins
fi
for binary in berth berth-shim; do
  if [[ ! -x "$bin_dir/$binary" ]]; then
    echo "install.sh: $bin_dir/$binary is not built (run without --no-build)" >&2
    exit 1
  fi
done

dest=${DESTDIR:-}$prefix
berth=$bin_dir/berth
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

install -d "$dest/bin" "$dest/share/man/man1" \
  "$dest/share/bash-completion/completions" \
  "$dest/share/zsh/site-functions" \
  "$dest/share/fish/vendor_completions.d"
install -m 0755 "$berth" "$bin_dir/berth-shim" "$dest/bin/"

"$berth" man --dir "$staging/man"
install -m 0644 "$staging"/man/*.1 "$dest/share/man/man1/"

"$berth" completion bash >"$staging/berth.bash"
"$berth" completion zsh >"$staging/_berth"
"$berth" completion fish >"$staging/berth.fish"
install -m 0644 "$staging/berth.bash" "$dest/share/bash-completion/completions/berth"
install -m 0644 "$staging/_berth" "$dest/share/zsh/site-functions/_berth"
install -m 0644 "$staging/berth.fish" "$dest/share/fish/vendor_completions.d/berth.fish"

echo "installed berth $("$berth" --version | cut -d' ' -f2-) into $dest"
