/* What training shows and records: one live progress line on a terminal (a plain line every
 * log interval otherwise), and the training scalars in TensorBoard and metrics.jsonl. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/util.h"

#include "train/trainer.h"

static void eta_text(double seconds, char *out, size_t cap) {
    if (!isfinite(seconds) || seconds < 0) snprintf(out, cap, "?");
    else if (seconds < 3600) snprintf(out, cap, "%dm%02ds", (int)seconds / 60, (int)seconds % 60);
    else snprintf(out, cap, "%dh%02dm", (int)seconds / 3600, ((int)seconds % 3600) / 60);
}

void vd_trainer_progress(vd_trainer *tr, bool force_line) {
    if (tr->opts->quiet || !tr->writer) return;
    double t = vd_now_seconds(), elapsed = t - tr->t_start;
    int64_t done = tr->step - tr->step_at_start, total = tr->hp->train.total_train_steps;
    double ips = done > 0 ? done * tr->global_batch / elapsed : 0; /* every rank's images */
    char eta[32];
    eta_text(done > 0 ? (total - tr->step) * elapsed / done : NAN, eta, sizeof eta);
    bool line = force_line || !tr->tty;
    if (!tr->tty && !force_line && tr->step % tr->opts->log_every != 0) return;
    if (!tr->tty && tr->step == tr->last_printed) return; /* a plain line once per step */
    tr->last_printed = tr->step;
    printf("%sstep %lld/%lld | %.1f img/s | ETA %s | loss %.4f | nelbo %.4f | kl %.4f | gnorm %.1f | skips %lld%s",
           tr->tty ? "\r\033[K" : "", (long long)tr->step, (long long)total, ips, eta, tr->ses.loss.total,
           tr->ses.loss.nelbo, tr->ses.loss.kl_report, tr->grad_norm, (long long)tr->skips, line ? "\n" : "");
    fflush(stdout);
    tr->t_last_log = t;
}

vd_status vd_trainer_log_train(vd_trainer *tr, vd_err *err) {
    const vd_loss *l = &tr->ses.loss;
    double elapsed = vd_now_seconds() - tr->t_start;
    int64_t done = tr->step - tr->step_at_start;
    const char *names[] = {"loss", "nelbo", "reconstruction_loss", "kl_div", "variational_beta",
                           "learning_rate", "grad_norm", "skips_count", "images_per_second"};
    double vals[] = {l->total, l->nelbo, l->recon_report, l->kl_report, l->beta, tr->lr, tr->grad_norm,
                     (double)tr->skips, done > 0 ? done * tr->global_batch / elapsed : 0};
    int n = (int)(sizeof vals / sizeof vals[0]);
    char tag[96];
    vd_status st = VD_OK;
    for (int i = 0; i < n && !st; i++) {
        snprintf(tag, sizeof tag, "%s/%s", i < 5 ? "Losses" : i < 6 ? "Schedules" : "Mean_Max_Updates", names[i]);
        st = vd_tb_scalar(tr->tb_train, tag, tr->step, vals[i], err);
    }
    for (int i = 0; i < tr->ses.arch.n_td && !st; i++) {
        snprintf(tag, sizeof tag, "Losses/latent_kl_%d", i);
        st = vd_tb_scalar(tr->tb_train, tag, tr->step, l->kl[i], err);
    }
    if (!st) st = vd_metrics_write(tr->metrics, tr->step, "train", names, vals, n, err);
    return st;
}
