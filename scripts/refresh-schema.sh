#!/usr/bin/env bash
# Regenerates proto/ — the schema of the protobuf codec — from one Kubernetes
# release's modules (k8s.io/api, k8s.io/apimachinery, k8s.io/kube-aggregator),
# taken from the Go module cache and downloaded from the module proxy when
# missing:
#
#   scripts/refresh-schema.sh v0.37.2
#
# Beside each generated.proto goes a fields.tsv (scripts/fields): what the Go
# struct of each message says about its fields (JSON names, omitempty, inline,
# pointers, byte slices), which decides what Go's marshallers write.
#
# Packages lose their `k8s.io.` prefix (`k8s.io.api.core.v1` is `api.core.v1`),
# which leaves the wire format unchanged. Groups whose objects are never
# stored are left out.
set -euo pipefail
version=${1:?usage: scripts/refresh-schema.sh MODULE_VERSION (e.g. v0.37.2)}
cd "$(dirname "$0")/.."
never_stored='^(admission|authentication|authorization|imagepolicy|apidiscovery)/'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
module_dir() {
  (cd "$work" && go mod download -json "$1@$version") | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}
(cd "$work" && go mod init schema-refresh >/dev/null 2>&1)
(cd scripts/fields && go build -o "$work/fields" .)
api=$(module_dir k8s.io/api)
machinery=$(module_dir k8s.io/apimachinery)
aggregator=$(module_dir k8s.io/kube-aggregator)
for d in "$api" "$machinery" "$aggregator"; do
  [ -d "$d" ] || { echo "module download failed" >&2; exit 1; }
done

rename() {
  sed -e 's/k8s\.io\.api\./api./g' \
      -e 's/k8s\.io\.apimachinery\./apimachinery./g' \
      -e 's/k8s\.io\.kube_aggregator\./kube_aggregator./g' \
      -e '/^import /s|"k8s.io/apimachinery/|"apimachinery/|' \
      -e '/^import /s|"k8s.io/api/|"api/|' \
      -e '/^import /s|"k8s.io/kube-aggregator/|"kube_aggregator/|' "$1" > "$2"
}

copy_tree() { # SOURCE_MODULE DESTINATION [FILTER]
  (cd "$1" && find . -name generated.proto | sed 's|^\./||' | sort) | while read -r f; do
    if [ -n "${3:-}" ] && ! grep -Eq "$3" <<<"$f"; then continue; fi
    if grep -Eq "$never_stored" <<<"$f"; then continue; fi
    mkdir -p "$2/$(dirname "$f")"
    rename "$1/$f" "$2/$f"
    "$work/fields" "$1/$(dirname "$f")" > "$2/$(dirname "$f")/fields.tsv"
  done
}

new=$work/proto
mkdir -p "$new"
copy_tree "$api" "$new/api"
copy_tree "$machinery" "$new/apimachinery" '^pkg/(api/resource|apis/meta/v1|runtime|runtime/schema|util/intstr)/generated.proto$'
copy_tree "$aggregator" "$new/kube_aggregator" '^pkg/apis/apiregistration/'
release=1.${version#v0.}
cat > "$new/README.md" <<EOF
# Kubernetes API definitions

The \`generated.proto\` files of Kubernetes ${release%.*} (the \`k8s.io/api\`,
\`k8s.io/apimachinery\` and \`k8s.io/kube-aggregator\` modules $version;
Apache-2.0, © The Kubernetes Authors) for the API groups kube-apiserver
stores, written by \`scripts/refresh-schema.sh $version\`: the upstream files
with their packages renamed (\`k8s.io.api.core.v1\` is \`api.core.v1\`), which
leaves the wire format unchanged. \`build.rs\` compiles them into the
descriptor set the protobuf codec decodes and encodes with.

Beside each \`generated.proto\`, \`fields.tsv\` (written by \`scripts/fields\`
from the Go structs of the same package) gives, per message and in Go struct
order, each protobuf field's number, JSON name and Go traits (\`omitempty\`,
\`inline\`, \`pointer\`, \`bytes\`): what decides which fields Go's marshallers
write and how its JSON names them.

Not included: groups that are never stored (\`admission\`, \`authentication\`,
\`authorization\`, \`imagepolicy\`, \`apidiscovery\`), \`apiextensions.k8s.io\`
(CustomResourceDefinition) and the metrics APIs.
EOF
# Versions later releases dropped, in which older clusters may still store
# objects: each from the last module release that carries it. (Kinds dropped
# from a version the release still carries, such as resource.k8s.io/v1alpha3's
# claims, stay unsupported: kube-apiserver cannot decode them either.)
kept_versions=(
  autoscaling/v2beta1@v0.35.0
  autoscaling/v2beta2@v0.35.0
  scheduling/v1alpha1@v0.35.0
  networking/v1alpha1@v0.33.0
  scheduling/v1alpha2@v0.36.0
)
kept=()
for entry in "${kept_versions[@]}"; do
  package=${entry%@*}
  [ -e "$new/api/$package/generated.proto" ] && continue
  old=$(version=${entry#*@} module_dir k8s.io/api)
  [ -f "$old/$package/generated.proto" ] || { echo "k8s.io/api@${entry#*@} has no $package" >&2; exit 1; }
  mkdir -p "$new/api/$package"
  rename "$old/$package/generated.proto" "$new/api/$package/generated.proto"
  "$work/fields" "$old/$package" > "$new/api/$package/fields.tsv"
  kept+=("$package (${entry#*@})")
done
if [ ${#kept[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${kept[@]}")
  printf '\nKept from earlier releases, which %s no longer carries (older clusters\nmay still store objects in them): %s.\n' \
    "$version" "${list%, }" >> "$new/README.md"
fi
rm -rf proto
cp -r "$new" proto
echo "proto/ now holds the schema of k8s.io/api $version ($(find proto -name '*.proto' | wc -l) files)"
