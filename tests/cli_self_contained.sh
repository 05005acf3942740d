#!/usr/bin/env bash
# The repository stands alone: no tracked or untracked (non-ignored) file may point at the
# sibling folder the project was developed beside, since a clone does not have it.
set -u
src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
command -v git >/dev/null 2>&1 || vd_skip "git (Debian: git; $VD_HOW)"
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: $src is not a git checkout"; exit 77; }
# built from pieces so that this script does not match itself
pattern="../sha""red"
hits=$(cd "$src" && { git ls-files -z; git ls-files -z --others --exclude-standard; } |
  sort -zu | xargs -0 -r grep -sInF -e "$pattern" --)
if [ -n "$hits" ]; then
  echo "FAIL: files that refer to $pattern (outside the repository):"
  echo "$hits"
  echo "cli_self_contained: $(cut -d: -f1 <<<"$hits" | sort -u | wc -l) file(s) refer outside the repository"
  exit 1
fi
echo "cli_self_contained: ok"
