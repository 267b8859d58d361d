"""Synthetic MicaSense RedEdge captures: raw DN TIFFs made by inverting the radiance model.

The scene's reflectance is known, each band sees it through a known pixel offset, and the
DN follow the published model with known calibration, so calibration must give it back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin
from scipy import ndimage

BANDS = {1: "Blue", 2: "Green", 3: "Red", 4: "NIR", 5: "Red edge"}
WAVELENGTH = {1: 475, 2: 560, 3: 668, 4: 840, 5: 717}
SHAPE = (240, 320)
BLACK = 4800
A1, A2, A3 = 1.5e-4, 1.2e-7, 1.4e-6
EXPOSURE = 2e-4
GAIN = 1.0
VIGNETTE_CENTER = (165.0, 118.0)
VIGNETTE_POLY = (-2e-5, 1e-7, -2e-9, 0.0, 0.0, 0.0)
#: Offset (rows, cols) of each band's view relative to the scene (band 3, red, = reference).
OFFSETS = {1: (3.0, -4.5), 2: (-2.25, 1.5), 3: (0.0, 0.0), 4: (5.5, 2.0), 5: (-1.0, -3.0)}
IRRADIANCE = 1.2  # W m^-2 nm^-1; radiance of a Lambertian surface = refl * E / pi


def vignette(shape=SHAPE) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    r = np.hypot(x - VIGNETTE_CENTER[0], y - VIGNETTE_CENTER[1])
    k = 1 + sum(c * r ** (i + 1) for i, c in enumerate(VIGNETTE_POLY))
    return 1 / k


def dn_from_radiance(rad: np.ndarray) -> np.ndarray:
    """Invert L = V a1/g (p - BL) / (te + a2 y - a3 te y) / 2**16 for p."""
    y = np.arange(rad.shape[0], dtype=float)[:, None]
    p = rad * 2.0**16 * (EXPOSURE + A2 * y - A3 * EXPOSURE * y) * GAIN / (vignette() * A1) + BLACK
    return np.clip(np.round(p), 0, 65535).astype(np.uint16)


def xmp(band: int, albedo: float | None = None) -> bytes:
    seq = lambda vals: "<rdf:Seq>" + "".join(f"<rdf:li>{v!r}</rdf:li>" for v in vals) + "</rdf:Seq>"  # noqa: E731
    extra = f"<Camera:Albedo>{albedo}</Camera:Albedo>" if albedo is not None else ""
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:MicaSense="http://micasense.com/MicaSense/1.0/">'
        f"<MicaSense:RadiometricCalibration>{seq((A1, A2, A3))}</MicaSense:RadiometricCalibration>"
        "<MicaSense:CaptureId>synthetic</MicaSense:CaptureId>"
        '</rdf:Description><rdf:Description rdf:about="" xmlns:Camera="http://pix4d.com/1.0">'
        f"<Camera:BandName>{BANDS[band]}</Camera:BandName>"
        f"<Camera:CentralWavelength>{WAVELENGTH[band]}</Camera:CentralWavelength>"
        f"<Camera:VignettingCenter>{seq(VIGNETTE_CENTER)}</Camera:VignettingCenter>"
        f"<Camera:VignettingPolynomial>{seq(VIGNETTE_POLY)}</Camera:VignettingPolynomial>"
        f'{extra}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def write_band(path: Path, dn: np.ndarray, band: int, *, albedo: float | None = None) -> Path:
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[271], info[272] = "MicaSense", "RedEdge"
    info[306] = "2017:10:19 20:42:10"
    info[50714] = (BLACK,) * 4
    info.tagtype[50714] = 3
    info[700] = xmp(band, albedo)
    info.tagtype[700] = 1
    info[34665] = {
        33434: TiffImagePlugin.IFDRational(int(EXPOSURE * 1e6), 1_000_000),
        34867: int(GAIN * 100),
        36867: "2017:10:19 20:42:10",
    }
    info[34853] = {
        1: "N",
        2: (36.0, 34.0, 33.5),
        3: "W",
        4: (119.0, 26.0, 6.9),
        6: TiffImagePlugin.IFDRational(1745, 10),
    }
    Image.fromarray(dn).save(path, tiffinfo=info)
    return path


def scene_reflectance(band: int, seed: int = 0) -> np.ndarray:
    """Textured scene (rows of 'trees' on soil): reflectance per band, 0..0.6."""
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.random(SHAPE), 2.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    veg = texture > 0.5
    veg_refl = {1: 0.04, 2: 0.08, 3: 0.05, 4: 0.50, 5: 0.25}[band]
    soil_refl = {1: 0.12, 2: 0.16, 3: 0.20, 4: 0.28, 5: 0.25}[band]
    return np.where(veg, veg_refl, soil_refl) * (0.8 + 0.4 * texture)


def write_capture(folder: Path, name: str, refl_of_band, *, albedo=None) -> list[Path]:
    """Write NAME_1..5.tif; ``refl_of_band(band)`` gives the scene reflectance per band."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for band in BANDS:
        refl = ndimage.shift(refl_of_band(band), OFFSETS[band], order=1, mode="nearest")
        rad = refl * IRRADIANCE / np.pi
        dn = dn_from_radiance(rad)
        paths.append(
            write_band(
                folder / f"{name}_{band}.tif",
                dn,
                band,
                albedo=None if albedo is None else albedo[band],
            )
        )
    return paths


PANEL_REFL = {1: 0.55, 2: 0.56, 3: 0.57, 4: 0.52, 5: 0.54}
PANEL_BOX = (80, 150, 130, 200)  # rows 80..150, cols 130..200 in the scene


def panel_scene(band: int) -> np.ndarray:
    """Dark ground, a bright uniform panel, and a bright but textured 'QR code' beside it."""
    rng = np.random.default_rng(7)
    img = 0.05 + 0.02 * rng.random(SHAPE)
    r0, r1, c0, c1 = PANEL_BOX
    img[r0:r1, c0:c1] = PANEL_REFL[band]
    qr = (rng.random(((r1 - r0) // 6, (c1 - c0) // 6)) > 0.5).repeat(6, 0).repeat(6, 1)
    img[r0 : r0 + qr.shape[0], 40 : 40 + qr.shape[1]] = np.where(qr, 0.6, 0.05)
    return img
