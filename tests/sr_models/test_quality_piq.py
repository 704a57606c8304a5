"""MS-SSIM, GMSD, VIFp and FSIM through piq, pinned against numpy transcriptions of the authors' MATLAB code (Wang's
``msssim.m``, Xue et al.'s ``GMSD.m``, Sheikh and Bovik's ``vifp_mscale.m``, Zhang et al.'s ``FeatureSIM.m`` with
Kovesi's ``phasecong2.m``) on real bicubic x4 outputs of Set5."""

import numpy as np
import pytest
from scipy.signal import convolve2d, fftconvolve

from sr_models import quality
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError
from sr_models.resize import imresize

LUMA = np.array([0.299, 0.587, 0.114])  # piq's rgb2yiq Y (GMSD, VIFp)


@pytest.fixture(scope="module")
def bicubic_pair(embedded_datasets):
    """Set5's baby (512x512) and its bicubic x4 reconstruction from Set5's LR file."""
    dataset = get_dataset("Set5", embedded_datasets)
    lr, hr = dataset.load(dataset.images[0])
    return imresize(lr, 4), hr


def gaussian(size, sigma):
    """MATLAB fspecial('gaussian', size, sigma)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    window = np.outer(g, g)
    return window / window.sum()


def valid(image, window):
    """MATLAB filter2(window, image, 'valid') (the windows are symmetric)."""
    return fftconvolve(image, window, mode="valid")


def ssim_and_cs(x, y, L=255.0):
    window = gaussian(11, 1.5)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    mu1, mu2 = valid(x, window), valid(y, window)
    s1 = valid(x * x, window) - mu1**2
    s2 = valid(y * y, window) - mu2**2
    s12 = valid(x * y, window) - mu1 * mu2
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    return (((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)) * cs).mean(), cs.mean()


def msssim_matlab(x, y):
    """Wang's msssim.m: 5 levels, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 mean then decimation."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    values = []
    for level in range(5):
        ssim, cs = ssim_and_cs(x, y)
        values.append(cs if level < 4 else ssim)
        if level == 4:
            break
        x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
        y = (y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2]) / 4
    return float(np.prod(np.array(values) ** np.array(weights)))


def gmsd_matlab(ref, dist, T=170.0):
    """GMSD.m on grey 0-255 images of even size: 2x2 average, decimation, Prewitt/3 gradients, std2 of the map."""

    def down(image):
        return (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2]) / 4

    dx = np.array([[1, 0, -1]] * 3) / 3.0
    maps = []
    for image in (down(ref), down(dist)):
        ix, iy = convolve2d(image, dx, mode="same"), convolve2d(image, dx.T, mode="same")
        maps.append(np.sqrt(ix**2 + iy**2))
    quality_map = (2 * maps[0] * maps[1] + T) / (maps[0] ** 2 + maps[1] ** 2 + T)
    return float(np.std(quality_map, ddof=1)), quality_map.size


def vifp_matlab(ref, dist, sigma_nsq=2.0):
    """vifp_mscale.m (Sheikh and Bovik's pixel-domain VIF), on grey 0-255 images."""
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        window = gaussian(n, n / 5)
        if scale > 1:
            ref, dist = valid(ref, window)[::2, ::2], valid(dist, window)[::2, ::2]
        mu1, mu2 = valid(ref, window), valid(dist, window)
        s1 = np.maximum(valid(ref * ref, window) - mu1**2, 0)
        s2 = np.maximum(valid(dist * dist, window) - mu2**2, 0)
        s12 = valid(ref * dist, window) - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10] = 0
        sv[s1 < 1e-10] = s2[s1 < 1e-10]
        s1[s1 < 1e-10] = 0
        g[s2 < 1e-10] = 0
        sv[s2 < 1e-10] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.log10(1 + g**2 * s1 / (sv + sigma_nsq)).sum()
        den += np.log10(1 + s1 / sigma_nsq).sum()
    return float(num / den)


def fft_grid(rows, cols):
    """Kovesi's frequency grid: x and y normalised to +-0.5 (odd sizes as MATLAB's (n-1)/2 ranges)."""

    def axis(n):
        return (np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)) if n % 2 else (np.arange(-n / 2, n / 2) / n)

    return np.meshgrid(axis(cols), axis(rows))


def lowpass(rows, cols, cutoff=0.45, n=15):
    """Kovesi's ``lowpassfilter.m``: a Butterworth filter, zero frequency at the corners."""
    x, y = fft_grid(rows, cols)
    return np.fft.ifftshift(1.0 / (1.0 + (np.sqrt(x**2 + y**2) / cutoff) ** (2 * n)))


def phasecong2(im, nscale=4, norient=4, min_wavelength=6, mult=2, sigma_onf=0.55, d_theta_on_sigma=1.2, k=2.0):
    """Kovesi's ``phasecong2.m`` as FeatureSIM.m ships it, written out line for line: log-Gabor filters (4 scales,
    4 orientations), the noise threshold from the smallest scale's median energy, PC_2 = sum of energies / sum of
    amplitudes."""
    epsilon = 0.0001
    theta_sigma = np.pi / norient / d_theta_on_sigma
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    x, y = fft_grid(rows, cols)
    radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius[0, 0] = 1
    sintheta, costheta = np.sin(theta), np.cos(theta)
    lp = lowpass(rows, cols)
    log_gabor = []
    for s in range(nscale):
        fo = 1.0 / (min_wavelength * mult**s)
        g = np.exp(-(np.log(radius / fo) ** 2) / (2 * np.log(sigma_onf) ** 2)) * lp
        g[0, 0] = 0
        log_gabor.append(g)
    energy_all = np.zeros((rows, cols))
    an_all = np.zeros((rows, cols))
    for o in range(norient):
        angl = o * np.pi / norient
        ds = sintheta * np.cos(angl) - costheta * np.sin(angl)
        dc = costheta * np.cos(angl) + sintheta * np.sin(angl)
        spread = np.exp(-(np.abs(np.arctan2(ds, dc)) ** 2) / (2 * theta_sigma**2))
        sum_e = np.zeros((rows, cols))
        sum_o = np.zeros((rows, cols))
        sum_an = np.zeros((rows, cols))
        eo, ifft_filters = [], []
        for s in range(nscale):
            filt = log_gabor[s] * spread
            ifft_filters.append(np.real(np.fft.ifft2(filt)) * np.sqrt(rows * cols))
            response = np.fft.ifft2(imagefft * filt)
            eo.append(response)
            sum_an += np.abs(response)
            sum_e += response.real
            sum_o += response.imag
            if s == 0:
                em_n = np.sum(filt**2)
        x_energy = np.sqrt(sum_e**2 + sum_o**2) + epsilon
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = np.zeros((rows, cols))
        for response in eo:
            e, od = response.real, response.imag
            energy += e * mean_e + od * mean_o - np.abs(e * mean_o - od * mean_e)
        median_e2n = np.median(np.abs(eo[0]) ** 2)
        mean_e2n = -median_e2n / np.log(0.5)
        noise_power = mean_e2n / em_n
        est_sum_an2 = sum(f**2 for f in ifft_filters)
        est_sum_aiaj = sum(ifft_filters[i] * ifft_filters[j] for i in range(nscale) for j in range(i + 1, nscale))
        est_noise_energy2 = 2 * noise_power * est_sum_an2.sum() + 4 * noise_power * est_sum_aiaj.sum()
        tau = np.sqrt(est_noise_energy2 / 2)
        t = (tau * np.sqrt(np.pi / 2) + k * np.sqrt((2 - np.pi / 2) * tau**2)) / 1.7
        energy_all += np.maximum(energy - t, 0)
        an_all += sum_an
    return energy_all / an_all


def feature_sim(ref, dist):
    """FeatureSIM.m (Lin Zhang): (FSIM, FSIMc) of uint8 images (grey: FSIMc is None); images under 384 pixels a side
    (no downsampling, F = 1)."""
    ref, dist = ref.astype(np.float64), dist.astype(np.float64)
    assert round(min(ref.shape[:2]) / 256) <= 1
    if ref.ndim == 3:
        yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        (y1, i1, q1), (y2, i2, q2) = (np.moveaxis(im @ yiq.T, -1, 0) for im in (ref, dist))
    else:
        y1, y2 = ref, dist
    pc1, pc2 = phasecong2(y1), phasecong2(y2)
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16
    dy = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]) / 16
    g1, g2 = (np.sqrt(convolve2d(y, dx, mode="same") ** 2 + convolve2d(y, dy, mode="same") ** 2) for y in (y1, y2))
    pc_sim = (2 * pc1 * pc2 + 0.85) / (pc1**2 + pc2**2 + 0.85)
    g_sim = (2 * g1 * g2 + 160) / (g1**2 + g2**2 + 160)
    pcm = np.maximum(pc1, pc2)
    fsim = (g_sim * pc_sim * pcm).sum() / pcm.sum()
    if ref.ndim != 3:
        return fsim, None
    i_sim = (2 * i1 * i2 + 200) / (i1**2 + i2**2 + 200)
    q_sim = (2 * q1 * q2 + 200) / (q1**2 + q2**2 + 200)
    chroma = np.real((i_sim * q_sim).astype(complex) ** 0.03)
    return fsim, (g_sim * pc_sim * chroma * pcm).sum() / pcm.sum()


def test_ms_ssim_is_wangs_msssim_per_channel(bicubic_pair):
    sr, hr = bicubic_pair
    border = 8  # 512 - 16 = 496 = 31 x 16: every level has even sides, where msssim.m and piq downsample alike
    ours = quality.compute("ms_ssim", sr, hr, crop_border=border)
    sr_c, hr_c = (image[border:-border, border:-border].astype(np.float64) for image in (sr, hr))
    reference = np.mean([msssim_matlab(sr_c[..., c], hr_c[..., c]) for c in range(3)])
    assert 0.9 < reference < 1
    assert ours == pytest.approx(reference, rel=1e-5)


def test_gmsd_is_the_authors_gmsd_with_the_population_std(bicubic_pair):
    sr, hr = bicubic_pair
    ours = quality.compute("gmsd", sr, hr, crop_border=4)
    luma_sr, luma_hr = (image[4:-4, 4:-4].astype(np.float64) @ LUMA for image in (sr, hr))
    reference, n = gmsd_matlab(luma_hr, luma_sr)
    # GMSD.m's std2 divides by N - 1, piq's std by N: the one difference, a factor sqrt((N - 1) / N).
    assert 0.01 < reference < 0.5
    assert ours == pytest.approx(reference * np.sqrt((n - 1) / n), rel=1e-5)


def test_vif_is_the_authors_pixel_domain_vifp(bicubic_pair):
    sr, hr = bicubic_pair
    ours = quality.compute("vif", sr, hr, crop_border=4)
    luma_sr, luma_hr = (image[4:-4, 4:-4].astype(np.float64) @ LUMA for image in (sr, hr))
    reference = vifp_matlab(luma_hr, luma_sr)
    assert 0.1 < reference < 1
    assert ours == pytest.approx(reference, rel=2e-5)  # 4.6e-6 measured: piq filters in float32, EPS 1e-8


def test_vif_takes_the_output_as_distorted_and_hr_as_reference(bicubic_pair):
    sr, hr = bicubic_pair
    forward = quality.compute("vif", sr, hr)
    backward = quality.compute("vif", hr, sr)
    assert forward != pytest.approx(backward, rel=1e-3)  # VIF is not symmetric: the order matters


@pytest.mark.parametrize("index", [1, 2, 3])  # Set5's images under 384 pixels a side: FeatureSIM.m does not downsample
def test_fsim_is_the_authors_featuresim(embedded_datasets, index):
    dataset = get_dataset("Set5", embedded_datasets)
    lr, hr = dataset.load(dataset.images[index])
    sr = imresize(lr, 4)
    fsim_grey, fsim_c = feature_sim(hr[4:-4, 4:-4], sr[4:-4, 4:-4])
    assert 0.5 < fsim_c < fsim_grey < 1
    assert quality.compute("fsim", sr, hr) == pytest.approx(fsim_c, abs=1e-5)  # FSIMc on colour images
    grey_sr, grey_hr = (np.round(image @ LUMA).astype(np.uint8) for image in (sr, hr))
    reference, _ = feature_sim(grey_hr[4:-4, 4:-4], grey_sr[4:-4, 4:-4])
    assert quality.compute("fsim", grey_sr, grey_hr) == pytest.approx(reference, abs=1e-5)  # FSIM on grey ones


def test_fsim_fixed_points_and_order(bicubic_pair):
    sr, hr = bicubic_pair
    nearest = imresize(imresize(hr, 0.25), 4, method="nearest")
    assert quality.compute("fsim", hr, hr) == pytest.approx(1.0, abs=1e-6)
    bicubic, blocky = quality.compute("fsim", sr, hr), quality.compute("fsim", nearest, hr)
    assert 0.5 < blocky < bicubic < 1
    grey = quality.compute("fsim", sr[..., 0], hr[..., 0])  # FSIM (no chromatic terms) on one channel
    assert 0.5 < grey < 1


@pytest.mark.parametrize("name", ["ms_ssim", "gmsd", "vif", "fsim"])
def test_identical_images_score_perfectly(bicubic_pair, name):
    _, hr = bicubic_pair
    perfect = 0.0 if name == "gmsd" else 1.0
    assert quality.compute(name, hr, hr) == pytest.approx(perfect, abs=1e-6)


def test_ms_ssim_refuses_an_image_too_small_for_five_scales():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    with pytest.raises(SRMOSError, match="ms_ssim cannot score a 112x92 image"):
        quality.compute("ms_ssim", image, image)
