"""The notebooks' plotting helpers: what they draw, and that they draw nothing when there is nothing."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from eyegen_lib.science.plotting import LiveLossPlot  # noqa: E402


def test_a_live_loss_plot_shows_nothing_until_a_model_trains():
    """A model taken from the zoo or loaded is never trained here: its loss plot must leave no empty frame."""
    before = set(plt.get_fignums())
    loaded = LiveLossPlot("loaded", every=2)
    loaded.close()
    assert set(plt.get_fignums()) == before and loaded.fig is None
    trained = LiveLossPlot("trained", every=2)
    for step in range(1, 5):
        trained.on_log(step, {"loss": 1.0 / step})
    assert trained.fig is not None and len(trained.ax.get_lines()) == 1
    assert list(trained.ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    trained.close()
    assert set(plt.get_fignums()) == before
