"""bench/benchmark.py's tables from its rows ({'what', 'part', 'engine', 'precision', 'batch', 's_per_image',
'rounds_s_per_image', 'gflops', 'pct_of_sgemm'}, and 'decoder', 'parameters', 'gflop_per_image' on --decoders
rows): the rows, the decoder table against FCN-8s, TensorFlow against the fastest peer, and the project's ONNX
export against the PyTorch peer's."""

PARTS = ('train', 'infer')
PRECISIONS = ('fp32', 'bf16', 'int8')
TF = 'TensorFlow'
# the product's row per (part, precision): what `python main.py` trains with and --evaluate/--predict run
PRODUCT_ROWS = {('train', 'fp32'): 'TF train', ('train', 'bf16'): 'TF train bf16',
                ('infer', 'fp32'): 'TF infer (frozen)', ('infer', 'bf16'): 'TF infer bf16 (frozen)'}


def print_decoder_table(rows):
    """Per decoder, batch and precision: training and inference s/image, against FCN-8s where it was measured."""
    print('\n| decoder | batch | precision | train s/image | x fcn8 | infer s/image | x fcn8 | parameters (M) | '
          'forward GFLOP/image |')
    print('|---|---:|---|---:|---:|---:|---:|---:|---:|')
    keys = sorted({(r['decoder'], r['batch'], r['precision']) for r in rows}, key=lambda k: (k[1], k[2]))
    for decoder, batch, precision in keys:
        cells = []
        for part in PARTS:
            found = {r['decoder']: r for r in rows
                     if (r['part'], r['batch'], r['precision']) == (part, batch, precision)}
            mine, base = found.get(decoder), found.get('fcn8')
            cells += ['{:.4f}'.format(mine['s_per_image']) if mine else '-',
                      '{:.2f}'.format(mine['s_per_image'] / base['s_per_image']) if mine and base else '-']
        any_row = next(r for r in rows if r['decoder'] == decoder)
        print('| {} | {} | {} | {} | {:.2f} | {:.2f} |'.format(decoder, batch, precision, ' | '.join(cells),
                                                              any_row['parameters'] / 1e6, any_row['gflop_per_image']))


def print_table(rows):
    print('\n| what | batch | precision | s/image | GFLOP/s | % of sgemm |')
    print('|---|---:|---|---:|---:|---:|')
    for r in rows:
        print('| {} | {} | {} | {:.4f} | {:.1f} | {:.0f} |'.format(r['what'], r['batch'], r['precision'],
                                                                   r['s_per_image'], r['gflops'], r['pct_of_sgemm']))


def _ratio(batch, part, precision, ours, theirs):
    """TensorFlow's speed over a peer's (>1: TensorFlow faster), of the medians and per round."""
    rounds = [y / x for x, y in zip(ours['rounds_s_per_image'], theirs['rounds_s_per_image'])]
    return {'batch': batch, 'part': part, 'precision': precision, 'tf': ours['what'], 'peer': theirs['what'],
            'tf_s_per_image': ours['s_per_image'], 'peer_s_per_image': theirs['s_per_image'],
            'speed': theirs['s_per_image'] / ours['s_per_image'], 'rounds_min': min(rounds), 'rounds_max': max(rounds)}


def ratios(rows):
    """Per batch and part: the product's TensorFlow row against the fastest peer row of each precision, and
    TensorFlow's fastest row against the fastest peer row in any precision ('any')."""
    out = []
    for batch in sorted({r['batch'] for r in rows}):
        for part in PARTS:
            mine = [r for r in rows if r['batch'] == batch and r['part'] == part]
            peer_rows = [r for r in mine if r['engine'] != TF]
            if not peer_rows:
                continue
            for precision in PRECISIONS:
                ours = [r for r in mine if r['what'] == PRODUCT_ROWS.get((part, precision))]
                theirs = [r for r in peer_rows if r['precision'] == precision]
                if ours and theirs:
                    out.append(_ratio(batch, part, precision, ours[0], min(theirs, key=lambda r: r['s_per_image'])))
            tf_rows = [r for r in mine if r['engine'] == TF]
            out.append(_ratio(batch, part, 'any', min(tf_rows, key=lambda r: r['s_per_image']),
                              min(peer_rows, key=lambda r: r['s_per_image'])))
    return out


def print_ratios(found):
    print('\nTensorFlow against the fastest peer (speed > 1: TensorFlow faster; rounds: the ratio of each round\'s '
          'neighbouring measurements)')
    for r in found:
        print('batch {:2d} {:5s} {:4s}: {} {:.4f} s/image vs {} {:.4f}: {:.2f}x (rounds {:.2f}-{:.2f}x)'.format(
            r['batch'], r['part'], r['precision'], r['tf'], r['tf_s_per_image'], r['peer'], r['peer_s_per_image'],
            r['speed'], r['rounds_min'], r['rounds_max']))


def export_ratios(rows):
    """Per batch and precision: ONNX Runtime on the project's export against ONNX Runtime on the PyTorch peer's
    export of the same network (same rounds, interleaved)."""
    out = []
    for batch in sorted({r['batch'] for r in rows}):
        for precision in ('fp32', 'int8'):
            found = {r['what']: r for r in rows if r['batch'] == batch}
            ours = found.get('ONNX Runtime infer {} (project export)'.format(precision))
            theirs = found.get('ONNX Runtime infer {} (PyTorch export)'.format(precision))
            if ours and theirs:
                out.append(_ratio(batch, 'infer', precision, ours, theirs))
    return out


def print_export_ratios(found):
    if found:
        print('\nONNX Runtime on the project\'s export against the PyTorch peer\'s export (speed > 1: the project\'s '
              'faster)')
    for r in found:
        print('batch {:2d} {}: {:.4f} s/image vs {:.4f}: {:.2f}x (rounds {:.2f}-{:.2f}x)'.format(
            r['batch'], r['precision'], r['tf_s_per_image'], r['peer_s_per_image'], r['speed'], r['rounds_min'],
            r['rounds_max']))
