"""Training curves: one line per run and metric, runs named in the legend."""

import csv

from keras_inception.plotting import PANELS, plot_runs, read_log

COLUMNS = [
    "epoch",
    "learning_rate",
    "loss",
    "top1",
    "top5",
    "val_loss",
    "val_top1",
    "val_top5",
    "zero_fraction",
]


def write_run(folder, epochs, rows_again=()):
    """A run folder with a CSVLogger-style log; `rows_again` epochs are logged a second time,
    as after a resume, with loss 9.0."""
    folder.mkdir()
    with open(folder / "log.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for epoch in range(epochs):
            writer.writerow([epoch, 0.1, 2.0 - epoch / 10, 0.5, 0.9, 2.1, 0.4, 0.8, 0.5])
        for epoch in rows_again:
            writer.writerow([epoch, 0.1, 9.0, 0.5, 0.9, 2.1, 0.4, 0.8, 0.5])
    return folder


def test_one_line_per_run_in_each_panel(tmp_path):
    runs = [write_run(tmp_path / "run_a", 3), write_run(tmp_path / "run_b", 5)]
    output = tmp_path / "curves.png"
    figure = plot_runs(runs, output)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = dict(zip((title for title, _ in PANELS), figure.axes))
    for title in ("learning rate", "zero fraction before pooling"):
        lines = panels[title].get_lines()
        assert [line.get_label() for line in lines] == ["run_a", "run_b"]
        assert [len(line.get_xdata()) for line in lines] == [3, 5]
    # Loss and accuracies: training and validation per run.
    labels = [line.get_label() for line in panels["top-1 accuracy"].get_lines()]
    assert labels == ["run_a", "run_a (validation)", "run_b", "run_b (validation)"]
    legend = [text.get_text() for text in panels["loss"].get_legend().get_texts()]
    assert legend == labels


def test_an_epoch_logged_twice_counts_once(tmp_path):
    run = write_run(tmp_path / "resumed", 3, rows_again=(2,))
    log = read_log(run)
    assert log["epoch"] == [1, 2, 3]
    assert log["loss"] == [2.0, 1.9, 9.0]  # the later row wins


def test_prefixed_metrics_of_models_with_an_auxiliary_head(tmp_path):
    run = tmp_path / "aux"
    run.mkdir()
    (run / "log.csv").write_text(
        "epoch,Logits__Logits_top1,AuxLogits__Logits_loss,loss,val_Logits__Logits_top1\n"
        "0,0.25,3.0,2.5,0.2\n"
    )
    figure = plot_runs([run], tmp_path / "aux.png")
    top1 = figure.axes[1].get_lines()
    assert [list(line.get_ydata()) for line in top1] == [[0.25], [0.2]]
