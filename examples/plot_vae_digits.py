"""
A variational autoencoder on handwritten digits
===============================================

:class:`fastem.VAE` trains an encoder and a decoder by the reparameterisation
trick (``pip install "fastem[vae]"``). On scikit-learn's 8 × 8 digits, scaled
to [0, 1] and modelled with a Bernoulli likelihood, it reconstructs held-out
digits from eight latent numbers and draws new ones from the prior.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from fastem import VAE

X = load_digits().data / 16.0
train, test = X[:1500], X[1500:]

vae = VAE(n_latent=8, hidden_layers=(128,), likelihood="bernoulli", max_epochs=60,
          random_state=0).fit(train)
print(f"{vae.n_iter_} epochs; held-out ELBO {vae.score(test):.1f} nats per digit")

reconstructed = vae.inverse_transform(vae.transform(test[:8]))
drawn = vae.inverse_transform(np.random.default_rng(0).normal(size=(8, 8)))

fig, axes = plt.subplots(3, 8, figsize=(8, 3.4), constrained_layout=True)
for row, (images, title) in enumerate([(test[:8], "held-out digits"),
                                       (reconstructed, "their reconstructions"),
                                       (drawn, "decoded draws from the prior")]):
    for ax, image in zip(axes[row], images):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
    axes[row, 0].set_title(title, loc="left", fontsize=9)
plt.show()
