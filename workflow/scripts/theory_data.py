"""Rule theory_data: MNIST from its IDX files, or MNIST-1D generated locally, as one .npz."""

from sigeo.runner import log, run
from sigeo.study.mnist import load_mnist, make_mnist1d, save_digits


def main() -> None:
    mnist_dir = snakemake.params.mnist_dir
    digits = load_mnist(mnist_dir) if mnist_dir else make_mnist1d(snakemake.params.seed)
    save_digits(snakemake.output[0], digits)
    log.info(
        "%s: %d train and %d test samples of %d features",
        digits.name,
        len(digits.x),
        len(digits.x_test),
        digits.x.shape[1],
    )


run(snakemake, main)
