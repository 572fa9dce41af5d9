"""Runtime formats: each format's writer, int8 and engine in one module, and the registry that
lists them.

    registry     the formats by name (:data:`FORMATS`): what the command line, the manifest and
                 :func:`~mobilevos.formats.base.open_exported` read
    manifest     ``manifest.json``: what a folder of exported programs holds
    base         the interface a format implements; the engines' shared host side
    onnx         ONNX graphs: writer, int8 (ONNX Runtime's quantizer),
                 :class:`~mobilevos.formats.onnx.OrtEngine`
    executorch   ExecuTorch programs lowered to XNNPACK: writer, int8 (PT2E),
                 :class:`~mobilevos.formats.executorch.ExecuTorchEngine`
    graphs       the network as one module per verb, which every format writes
    calibration  int8 calibration clips and the sessions that record the programs' feeds
    verify       two engines compared verb by verb and mask by mask
    export       :func:`~mobilevos.formats.export.export_model`: write, quantize, verify, in
                 any format

Only the registry is imported with this package, so listing the formats costs nothing.
"""

from mobilevos.formats.registry import FORMATS, Format, get_format

__all__ = ["FORMATS", "Format", "get_format"]
