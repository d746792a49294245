/* vk_graph.c - graphs on the Vulkan backend: placement, descriptor sets, and one command
 * buffer per graph, recorded at prepare and replayed by every compute.
 *
 * Placement (backends/backend.h data contract):
 *  - weights: vk_weight_get (uploaded or imported once per host pointer, shared by graphs);
 *  - KV caches and KV_STORE nodes: vk_cache_get (device memory per host pointer, zeroed);
 *  - everything else in one arena per graph, laid out by graph/alloc's liveness planner
 *    (regions reused once their last reader has run). Inputs and outputs are host memory:
 *    on unified-memory devices the arena is mapped and inputs/outputs point straight into
 *    it; on discrete GPUs they get host-visible mirrors, and the command buffer copies
 *    inputs in before the first dispatch and outputs out after the last.
 * Inputs whose data the caller set before prepare are copied in at every compute.
 *
 * Per-run parameters: n_past of KV_STORE and ATTENTION nodes (changed between steps by
 * bn_forward_set_n_past) is written at every compute into a small host-visible parameter
 * buffer that the shaders read, and the ROPE cos/sin tables are computed on the host from
 * the positions input; so the recorded command buffer stays valid. Any other parameter
 * change is noticed by comparing with a snapshot and the commands are recorded again.
 *
 * Synchronization: a dispatch is preceded by a memory barrier when it reads or writes a
 * range written since the last barrier, or writes a range read since then (independent
 * neighbours such as the q/k/v projections run without one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../graph/alloc.h"
#include "vk_internal.h"

typedef struct vk_place {
    vk_span span; /* device binding (weights: first chunk) */
    const vk_weight *w;
    uint8_t *host;         /* inputs and outputs: their host memory (mapped) */
    VkDeviceSize host_off; /* discrete: offset of that memory in the host buffer */
    bool input, output, owned_data;
} vk_place;

typedef struct vk_copy {
    VkDeviceSize host_off, dev_off, size;
} vk_copy;

typedef struct vk_graph {
    bn_graph *g;
    vk_backend *be;
    vk_place *pl; /* by tensor id */
    vk_buffer arena, hostbuf;
    bool direct; /* inputs/outputs live in the mapped arena */
    int *slot;   /* n_past slot by tensor id, -1 */
    int n_slots;
    VkDeviceSize *rope_off; /* by tensor id: the ROPE node's table region in hostbuf */
    int *rope_leader;       /* by tensor id: the ROPE node whose table this one reads */
    uint32_t *rope_stride;  /* pairs per token in the table */
    vk_copy *cin, *cout;
    int n_cin, n_cout;
    vk_dispatch_list dl;
    VkDescriptorPool dpool;
    int dpool_sets;
    VkCommandBuffer cb;
    VkQueryPool qpool;
    uint32_t n_queries;
    int32_t *snap_i;
    float *snap_f;
    struct vk_graph *next;
} vk_graph;

#define ALIGN 64

/* ---- resolver callbacks for vk_ops.c ---- */

static vk_span r_span(void *ctx, const bn_tensor *t) {
    return ((vk_graph *)ctx)->pl[t->id].span;
}
static const vk_weight *r_weight(void *ctx, const bn_tensor *t) {
    return ((vk_graph *)ctx)->pl[t->id].w;
}
static vk_span r_params(void *ctx) {
    vk_graph *gs = ctx;
    VkDeviceSize n = (VkDeviceSize)(gs->n_slots ? gs->n_slots : 1) * 4;
    return (vk_span){gs->hostbuf.buf, 0, vk_align_up(n, 4), gs->hostbuf.map};
}
static int r_slot(void *ctx, const bn_tensor *node) {
    return ((vk_graph *)ctx)->slot[node->id];
}

/* Bytes of one cos or sin in a ROPE table: doubles for the fp64 shaders. */
static size_t rope_elem(const vk_backend *be) {
    return be->use_fp64 ? sizeof(double) : sizeof(float);
}

static bool same_rope(const bn_tensor *a, const bn_tensor *b) {
    return a->src[1] == b->src[1] && a->ip[1] == b->ip[1] && a->ip[2] == b->ip[2] &&
           a->fp[0] == b->fp[0];
}

static vk_span r_rope(void *ctx, const bn_tensor *node, uint32_t *stride) {
    vk_graph *gs = ctx;
    int leader = node->id;
    for (int i = 0; i < gs->g->n_nodes; i++) {
        const bn_tensor *o = gs->g->nodes[i];
        if (o == node) break;
        if (o->op == BN_OP_ROPE && same_rope(o, node)) {
            leader = o->id;
            break;
        }
    }
    gs->rope_leader[node->id] = leader;
    *stride = gs->rope_stride[leader];
    const VkDeviceSize bytes =
        (VkDeviceSize)node->src[1]->ne[0] * gs->rope_stride[leader] * 2 * rope_elem(gs->be);
    return (vk_span){gs->hostbuf.buf, gs->rope_off[leader], vk_align_up(bytes ? bytes : 4, 4),
                     gs->hostbuf.map + gs->rope_off[leader]};
}

/* ---- lookup ---- */

static vk_graph *find_graph(vk_backend *be, const bn_graph *g) {
    for (vk_graph *s = be->graphs; s; s = s->next)
        if (s->g == g) return s;
    return NULL;
}

static void snapshot(vk_graph *gs) {
    for (int i = 0; i < gs->g->n_nodes; i++) {
        const bn_tensor *t = gs->g->nodes[i];
        memcpy(gs->snap_i + 8 * i, t->ip, sizeof t->ip);
        memcpy(gs->snap_f + 8 * i, t->fp, sizeof t->fp);
        if (t->op == BN_OP_KV_STORE || t->op == BN_OP_ATTENTION) gs->snap_i[8 * i] = 0;
    }
}

static bool snapshot_changed(const vk_graph *gs) {
    for (int i = 0; i < gs->g->n_nodes; i++) {
        const bn_tensor *t = gs->g->nodes[i];
        int32_t ip[BN_MAX_PARAMS];
        memcpy(ip, t->ip, sizeof ip);
        if (t->op == BN_OP_KV_STORE || t->op == BN_OP_ATTENTION) ip[0] = 0;
        if (memcmp(ip, gs->snap_i + 8 * i, sizeof ip) ||
            memcmp(t->fp, gs->snap_f + 8 * i, sizeof t->fp))
            return true;
    }
    return false;
}

/* ---- recording ---- */

static void barrier(VkCommandBuffer cb, VkPipelineStageFlags src, VkAccessFlags sa,
                    VkPipelineStageFlags dst, VkAccessFlags da) {
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = sa, .dstAccessMask = da};
    vkCmdPipelineBarrier(cb, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

static bool overlaps(const vk_span *a, const vk_span *b) {
    return a->buf == b->buf && a->off < b->off + b->size && b->off < a->off + a->size;
}

static bool any_overlap(const vk_span *s, const vk_span *list, int n) {
    for (int i = 0; i < n; i++)
        if (overlaps(s, &list[i])) return true;
    return false;
}

static bn_status write_sets(vk_graph *gs, bn_err *err) {
    vk_backend *be = gs->be;
    const int n = gs->dl.n;
    if (gs->dpool && gs->dpool_sets < n) {
        vkDestroyDescriptorPool(be->dev, gs->dpool, NULL);
        gs->dpool = VK_NULL_HANDLE;
    }
    if (!gs->dpool) {
        const int sets = n > 0 ? n : 1;
        VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                   (uint32_t)(sets * VK_MAX_BINDINGS)};
        VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = (uint32_t)sets,
                                         .poolSizeCount = 1,
                                         .pPoolSizes = &ps};
        VkResult r = vkCreateDescriptorPool(be->dev, &pi, NULL, &gs->dpool);
        if (r != VK_SUCCESS)
            return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot create a descriptor pool: %s",
                           vk_result_name(r));
        gs->dpool_sets = sets;
    } else {
        vkResetDescriptorPool(be->dev, gs->dpool, 0);
    }
    for (int i = 0; i < n; i++) {
        vk_dispatch *d = &gs->dl.d[i];
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = gs->dpool,
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &be->dsl};
        VkResult r = vkAllocateDescriptorSets(be->dev, &ai, &d->set);
        if (r != VK_SUCCESS)
            return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot allocate a descriptor set: %s",
                           vk_result_name(r));
        VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
        VkWriteDescriptorSet w[VK_MAX_BINDINGS];
        for (int b = 0; b < VK_MAX_BINDINGS; b++) {
            const vk_span *s = &d->bind[b];
            bi[b] = s->buf ? (VkDescriptorBufferInfo){s->buf, s->off, s->size}
                           : (VkDescriptorBufferInfo){be->dummy.buf, 0, VK_WHOLE_SIZE};
            w[b] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstSet = d->set,
                                          .dstBinding = (uint32_t)b,
                                          .descriptorCount = 1,
                                          .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                          .pBufferInfo = &bi[b]};
        }
        vkUpdateDescriptorSets(be->dev, VK_MAX_BINDINGS, w, 0, NULL);
    }
    return BN_OK;
}

static bn_status record(vk_graph *gs, bn_err *err) {
    vk_backend *be = gs->be;
    VkCommandBuffer cb = gs->cb;
    vkResetCommandBuffer(cb, 0);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    vkBeginCommandBuffer(cb, &bi);
    const VkPipelineStageFlags CS = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                               TR = VK_PIPELINE_STAGE_TRANSFER_BIT;
    const VkAccessFlags RW = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    if (gs->qpool) vkCmdResetQueryPool(cb, gs->qpool, 0, gs->n_queries);
    /* the previous run (or upload) is complete before this one touches anything */
    barrier(cb, CS | TR | VK_PIPELINE_STAGE_HOST_BIT,
            RW | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT, CS | TR,
            RW | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    for (int i = 0; i < gs->n_cin; i++) {
        VkBufferCopy c = {gs->cin[i].host_off, gs->cin[i].dev_off, gs->cin[i].size};
        vkCmdCopyBuffer(cb, gs->hostbuf.buf, gs->arena.buf, 1, &c);
    }
    if (gs->n_cin) barrier(cb, TR, VK_ACCESS_TRANSFER_WRITE_BIT, CS, RW);
    if (gs->qpool) vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, gs->qpool, 0);

    vk_span *rd = malloc(sizeof(vk_span) * (size_t)(gs->dl.n * VK_MAX_BINDINGS + 1));
    vk_span *wr = malloc(sizeof(vk_span) * (size_t)(gs->dl.n * VK_MAX_BINDINGS + 1));
    if (!rd || !wr) {
        free(rd);
        free(wr);
        vkEndCommandBuffer(cb);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    int nr = 0, nw = 0;
    VkPipeline bound = VK_NULL_HANDLE;
    for (int i = 0; i < gs->dl.n; i++) {
        const vk_dispatch *d = &gs->dl.d[i];
        bool need = false;
        for (int b = 0; b < VK_MAX_BINDINGS && !need; b++) {
            if (!d->bind[b].buf) continue;
            need = any_overlap(&d->bind[b], wr, nw) ||
                   (d->writes[b] && any_overlap(&d->bind[b], rd, nr));
        }
        if (need) {
            barrier(cb, CS, VK_ACCESS_SHADER_WRITE_BIT, CS, RW);
            nr = nw = 0;
        }
        for (int b = 0; b < VK_MAX_BINDINGS; b++) {
            if (!d->bind[b].buf) continue;
            if (d->writes[b])
                wr[nw++] = d->bind[b];
            else
                rd[nr++] = d->bind[b];
        }
        if (d->pipe != bound) {
            vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe);
            bound = d->pipe;
        }
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, be->layout, 0, 1, &d->set, 0,
                                NULL);
        if (d->push_size)
            vkCmdPushConstants(cb, be->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size,
                               d->push);
        vkCmdDispatch(cb, d->groups[0], d->groups[1], d->groups[2]);
        if (gs->qpool)
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, gs->qpool,
                                (uint32_t)i + 1);
    }
    free(rd);
    free(wr);
    barrier(cb, CS, VK_ACCESS_SHADER_WRITE_BIT, TR | VK_PIPELINE_STAGE_HOST_BIT,
            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_HOST_READ_BIT);
    for (int i = 0; i < gs->n_cout; i++) {
        VkBufferCopy c = {gs->cout[i].dev_off, gs->cout[i].host_off, gs->cout[i].size};
        vkCmdCopyBuffer(cb, gs->arena.buf, gs->hostbuf.buf, 1, &c);
    }
    if (gs->n_cout)
        barrier(cb, TR, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                VK_ACCESS_HOST_READ_BIT);
    VkResult r = vkEndCommandBuffer(cb);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan: recording failed: %s", vk_result_name(r));
    return BN_OK;
}

/* Encodes every node, writes the descriptor sets and records the command buffer. */
static bn_status encode_all(vk_graph *gs, bn_err *err) {
    vk_resolver res = {gs, r_span, r_weight, r_params, r_slot, r_rope};
    gs->dl.n = 0;
    for (int i = 0; i < gs->g->n_nodes; i++) {
        const bn_tensor *t = gs->g->nodes[i];
        if (t->op == BN_OP_ROPE) {
            const uint32_t need = (uint32_t)(t->ip[1] / 2);
            if (need > gs->rope_stride[t->id])
                return bn_fail(err, BN_ERR_INVALID_ARG,
                               "vulkan: node '%s': n_rot grew after prepare; release the graph "
                               "and prepare it again",
                               t->name);
        }
        if (vk_encode_node(gs->be, t, &res, &gs->dl, err) != BN_OK) return err->code;
    }
    if (gs->qpool && gs->n_queries != (uint32_t)gs->dl.n + 1) {
        vkDestroyQueryPool(gs->be->dev, gs->qpool, NULL);
        gs->qpool = VK_NULL_HANDLE;
    }
    if (gs->be->profile && gs->be->caps.timestamps && !gs->qpool) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = (uint32_t)gs->dl.n + 1};
        if (vkCreateQueryPool(gs->be->dev, &qi, NULL, &gs->qpool) == VK_SUCCESS)
            gs->n_queries = qi.queryCount;
        else
            gs->qpool = VK_NULL_HANDLE;
    }
    if (write_sets(gs, err) != BN_OK) return err->code;
    return record(gs, err);
}

/* ---- prepare ---- */

static void free_graph(vk_backend *be, vk_graph *gs) {
    if (gs->g && gs->pl)
        for (int i = 0; i < gs->g->n_tensors; i++)
            if (gs->pl[i].owned_data) gs->g->tensors[i]->data = NULL;
    if (gs->cb) vkFreeCommandBuffers(be->dev, be->cmd_pool, 1, &gs->cb);
    if (gs->dpool) vkDestroyDescriptorPool(be->dev, gs->dpool, NULL);
    if (gs->qpool) vkDestroyQueryPool(be->dev, gs->qpool, NULL);
    vk_buffer_destroy(be, &gs->arena);
    vk_buffer_destroy(be, &gs->hostbuf);
    free(gs->pl);
    free(gs->slot);
    free(gs->rope_off);
    free(gs->rope_leader);
    free(gs->rope_stride);
    free(gs->cin);
    free(gs->cout);
    free(gs->dl.d);
    free(gs->snap_i);
    free(gs->snap_f);
    free(gs);
}

static bool is_cache_leaf(const bn_graph *g, const bn_tensor *t) {
    if (t->op != BN_OP_NONE) return false;
    if (t->flags & BN_TENSOR_CACHE) return true;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == BN_OP_KV_STORE && g->nodes[i]->src[0] == t) return true;
    return false;
}

static bn_status place_all(vk_graph *gs, bn_err *err) {
    vk_backend *be = gs->be;
    bn_graph *g = gs->g;
    const int n = g->n_tensors;
    bool *used = calloc((size_t)n, sizeof *used);
    size_t *offs = malloc(sizeof(size_t) * (size_t)n);
    if (!used || !offs) {
        free(used);
        free(offs);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    bn_status st = BN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        used[g->nodes[i]->id] = true;
        for (int s = 0; s < BN_MAX_SRC; s++) {
            const bn_tensor *src = g->nodes[i]->src[s];
            if (!src) continue;
            if (src->id < 0 || src->id >= n || g->tensors[src->id] != src) {
                st = bn_fail(err, BN_ERR_INVALID_ARG,
                             "vulkan: node '%s' reads '%s', which is not in its graph",
                             g->nodes[i]->name, src->name);
                goto out;
            }
            used[src->id] = true;
        }
    }
    for (int i = 0; i < n; i++)
        if (g->tensors[i]->op == BN_OP_NONE && (g->tensors[i]->flags & BN_TENSOR_INPUT))
            used[i] = true;

    /* arena: graph/alloc's plan (64-byte offsets), then caller-fed leaves at the end */
    size_t end = 0;
    const bool plan_ok = be->caps.offset_align <= ALIGN;
    if (plan_ok) {
        end = bn_graph_plan_memory(g, offs, err);
        if (!end) {
            st = err->code;
            goto out;
        }
    } else {
        for (int i = 0; i < n; i++) offs[i] = SIZE_MAX;
    }
    const VkDeviceSize al = be->caps.offset_align > ALIGN ? be->caps.offset_align : ALIGN;
    VkDeviceSize host_end = 0;
    int n_in = 0, n_out = 0;
    for (int i = 0; i < n; i++) {
        bn_tensor *t = g->tensors[i];
        if (!used[i]) continue;
        const bool weight = t->op == BN_OP_NONE && (t->flags & BN_TENSOR_WEIGHT);
        const bool cache = is_cache_leaf(g, t) || t->op == BN_OP_KV_STORE;
        if (weight || cache) continue;
        const size_t nb = bn_tensor_nbytes(t);
        if (nb > be->caps.max_binding) {
            st = bn_fail(err, BN_ERR_UNSUPPORTED,
                         "vulkan:%d: tensor '%s' is %.1f MiB, more than one storage binding "
                         "(%.1f MiB)",
                         be->base.device, t->name, (double)nb / (1 << 20),
                         (double)be->caps.max_binding / (1 << 20));
            goto out;
        }
        if (offs[i] == SIZE_MAX) {
            offs[i] = vk_align_up(end, al);
            end = offs[i] + vk_align_up(nb ? nb : 4, al);
        }
        gs->pl[i].input = t->op == BN_OP_NONE;
        gs->pl[i].output = t->op != BN_OP_NONE && (t->flags & BN_TENSOR_OUTPUT);
        if (gs->pl[i].input) n_in++;
        if (gs->pl[i].output) n_out++;
    }
    if (vk_buffer_create(be, end ? end : ALIGN, VK_MEM_DEVICE, &gs->arena, err) != BN_OK) {
        st = err->code;
        goto out;
    }
    gs->direct = be->caps.unified && gs->arena.map;

    /* host buffer: n_past slots, rope tables, then (discrete) input/output mirrors */
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *t = g->nodes[i];
        if (t->op == BN_OP_KV_STORE || t->op == BN_OP_ATTENTION) gs->slot[t->id] = gs->n_slots++;
    }
    host_end = vk_align_up((VkDeviceSize)(gs->n_slots ? gs->n_slots : 1) * 4, al);
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *t = g->nodes[i];
        if (t->op != BN_OP_ROPE) continue;
        gs->rope_stride[t->id] = (uint32_t)(t->ip[2] / 2);
        gs->rope_off[t->id] = host_end;
        host_end += vk_align_up(
            (VkDeviceSize)t->src[1]->ne[0] * gs->rope_stride[t->id] * 2 * rope_elem(be) + 8, al);
    }
    if (!gs->direct)
        for (int i = 0; i < n; i++)
            if (gs->pl[i].input || gs->pl[i].output) {
                gs->pl[i].host_off = host_end;
                host_end += vk_align_up(bn_tensor_nbytes(g->tensors[i]) + 4, al);
            }
    if (vk_buffer_create(be, host_end, VK_MEM_HOST, &gs->hostbuf, err) != BN_OK) {
        st = err->code;
        goto out;
    }
    gs->cin = calloc((size_t)(n_in ? n_in : 1), sizeof *gs->cin);
    gs->cout = calloc((size_t)(n_out ? n_out : 1), sizeof *gs->cout);
    if (!gs->cin || !gs->cout) {
        st = bn_fail(err, BN_ERR_OOM, "out of memory");
        goto out;
    }

    for (int i = 0; i < n && st == BN_OK; i++) {
        bn_tensor *t = g->tensors[i];
        vk_place *p = &gs->pl[i];
        if (!used[i]) continue;
        if (t->op == BN_OP_NONE && (t->flags & BN_TENSOR_WEIGHT)) {
            st = vk_weight_get(be, t, &p->w, err);
            if (st == BN_OK) p->span = p->w->chunks[0].data;
            continue;
        }
        if (is_cache_leaf(g, t)) {
            st = vk_cache_get(be, t, &p->span, err);
            continue;
        }
        if (t->op == BN_OP_KV_STORE) continue; /* after its cache, below */
        const size_t nb = bn_tensor_nbytes(t);
        p->span = (vk_span){gs->arena.buf, offs[i], vk_align_up(nb ? nb : 4, 4),
                            gs->arena.map ? gs->arena.map + offs[i] : NULL};
        if (!p->input && !p->output) continue;
        if (gs->direct) {
            p->host = p->span.map;
        } else {
            const VkDeviceSize ho = p->host_off;
            p->host = gs->hostbuf.map + ho;
            vk_copy c = {ho, offs[i], vk_align_up(nb ? nb : 4, 4)};
            if (p->input)
                gs->cin[gs->n_cin++] = c;
            else
                gs->cout[gs->n_cout++] = c;
        }
        if (p->output || !t->data) {
            t->data = p->host;
            p->owned_data = true;
        }
    }
    for (int i = 0; i < g->n_nodes && st == BN_OK; i++) {
        const bn_tensor *t = g->nodes[i];
        if (t->op == BN_OP_KV_STORE) gs->pl[t->id].span = gs->pl[t->src[0]->id].span;
    }
    /* a weight split in chunks can only feed the ops that dispatch per chunk */
    for (int i = 0; i < g->n_nodes && st == BN_OK; i++) {
        const bn_tensor *t = g->nodes[i];
        for (int s = 0; s < BN_MAX_SRC; s++) {
            const bn_tensor *src = t->src[s];
            if (!src || !gs->pl[src->id].w || gs->pl[src->id].w->n_chunks == 1) continue;
            const bool ok = s == 0 && (t->op == BN_OP_MATMUL_TERNARY || t->op == BN_OP_MATMUL_F ||
                                       t->op == BN_OP_GET_ROWS);
            if (!ok)
                st = bn_fail(err, BN_ERR_UNSUPPORTED,
                             "vulkan: weight '%s' is larger than one binding and node '%s' (%s) "
                             "cannot read it in parts",
                             src->name, t->name, bn_op_name(t->op));
        }
    }
out:
    free(used);
    free(offs);
    return st;
}

bn_status vk_graph_prepare(bn_backend *b, bn_graph *g, bn_err *err) {
    vk_backend *be = (vk_backend *)b;
    if (find_graph(be, g)) return BN_OK;
    if (bn_graph_check(g, err) != BN_OK) return err->code;
    for (int i = 0; i < g->n_nodes; i++)
        if (vk_check_node(be, g->nodes[i], err) != BN_OK) return err->code;
    vk_graph *gs = calloc(1, sizeof *gs);
    if (!gs) return bn_fail(err, BN_ERR_OOM, "out of memory");
    gs->g = g;
    gs->be = be;
    const size_t n = (size_t)(g->n_tensors ? g->n_tensors : 1);
    const size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
    gs->pl = calloc(n, sizeof *gs->pl);
    gs->slot = malloc(n * sizeof *gs->slot);
    gs->rope_off = calloc(n, sizeof *gs->rope_off);
    gs->rope_leader = calloc(n, sizeof *gs->rope_leader);
    gs->rope_stride = calloc(n, sizeof *gs->rope_stride);
    gs->snap_i = calloc(nn * 8, sizeof *gs->snap_i);
    gs->snap_f = calloc(nn * 8, sizeof *gs->snap_f);
    if (!gs->pl || !gs->slot || !gs->rope_off || !gs->rope_leader || !gs->rope_stride ||
        !gs->snap_i || !gs->snap_f) {
        free_graph(be, gs);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) gs->slot[i] = -1;
    bn_status st = place_all(gs, err);
    if (st == BN_OK) {
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                          .commandPool = be->cmd_pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                          .commandBufferCount = 1};
        VkResult r = vkAllocateCommandBuffers(be->dev, &ai, &gs->cb);
        if (r != VK_SUCCESS)
            st = bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot allocate a command buffer: %s",
                         vk_result_name(r));
    }
    if (st == BN_OK) st = encode_all(gs, err);
    if (st != BN_OK) {
        free_graph(be, gs);
        return st;
    }
    snapshot(gs);
    gs->next = be->graphs;
    be->graphs = gs;
    return BN_OK;
}

/* ---- compute ---- */

static void fill_rope(vk_graph *gs, const bn_tensor *t) {
    const bn_tensor *pos = t->src[1];
    const int32_t *pv = pos->data;
    const int half = t->ip[1] / 2, n_rot = t->ip[1];
    const uint32_t stride = gs->rope_stride[t->id];
    const double base = t->fp[0];
    float *tab = (float *)(gs->hostbuf.map + gs->rope_off[t->id]);
    double *tabd = (double *)(gs->hostbuf.map + gs->rope_off[t->id]);
    const bool dbl = gs->be->use_fp64;
    for (int64_t k = 0; k < pos->ne[0]; k++)
        for (int j = 0; j < half; j++) {
            /* the CPU reference's formula, in double */
            const double theta = (double)pv[k] * pow(base, -2.0 * j / n_rot);
            const size_t at = 2 * ((size_t)k * stride + (size_t)j);
            if (dbl) {
                tabd[at] = cos(theta);
                tabd[at + 1] = sin(theta);
            } else {
                tab[at] = (float)cos(theta);
                tab[at + 1] = (float)sin(theta);
            }
        }
}

static void collect_profile(vk_graph *gs) {
    vk_backend *be = gs->be;
    if (!gs->qpool || gs->n_queries < 2) return;
    uint64_t *ts = malloc(sizeof(uint64_t) * gs->n_queries);
    if (!ts) return;
    if (vkGetQueryPoolResults(be->dev, gs->qpool, 0, gs->n_queries,
                              sizeof(uint64_t) * gs->n_queries, ts, sizeof(uint64_t),
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS) {
        for (int i = 0; i < gs->dl.n; i++) {
            const bn_tensor *node = gs->dl.d[i].node;
            const double dt = (double)(ts[i + 1] - ts[i]) * be->caps.ts_period_ns;
            be->stats[node->op].ns += dt > 0 ? dt : 0;
            be->stats[node->op].count++;
        }
    }
    free(ts);
}

bn_status vk_graph_compute(bn_backend *b, bn_graph *g, bn_err *err) {
    vk_backend *be = (vk_backend *)b;
    vk_graph *gs = find_graph(be, g);
    if (!gs) {
        if (vk_graph_prepare(b, g, err) != BN_OK) return err->code;
        gs = find_graph(be, g);
    }
    if (snapshot_changed(gs)) {
        for (int i = 0; i < g->n_nodes; i++)
            if (vk_check_node(be, g->nodes[i], err) != BN_OK) return err->code;
        if (encode_all(gs, err) != BN_OK) return err->code;
        snapshot(gs);
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const bn_tensor *t = g->tensors[i];
        const vk_place *p = &gs->pl[i];
        if (p->input && t->data != p->host) {
            if (!t->data)
                return bn_fail(err, BN_ERR_INVALID_ARG, "vulkan: input '%s' has no data", t->name);
            memcpy(p->host, t->data, bn_tensor_nbytes(t));
        }
    }
    int32_t *params = (int32_t *)gs->hostbuf.map;
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *t = g->nodes[i];
        if (gs->slot[t->id] >= 0) params[gs->slot[t->id]] = t->ip[0];
        if (t->op == BN_OP_ROPE && gs->rope_leader[t->id] == t->id) fill_rope(gs, t);
    }
    if (vk_submit_wait(be, gs->cb, err) != BN_OK) return err->code;
    for (int i = 0; i < g->n_tensors; i++) {
        bn_tensor *t = g->tensors[i];
        const vk_place *p = &gs->pl[i];
        if (p->output && t->data != p->host && t->data)
            memcpy(t->data, p->host, bn_tensor_nbytes(t));
    }
    if (be->profile) collect_profile(gs);
    return BN_OK;
}

void vk_graph_release(bn_backend *b, bn_graph *g) {
    vk_backend *be = (vk_backend *)b;
    for (vk_graph **p = &be->graphs; *p; p = &(*p)->next)
        if ((*p)->g == g) {
            vk_graph *gs = *p;
            *p = gs->next;
            vkQueueWaitIdle(be->queue);
            free_graph(be, gs);
            return;
        }
}

void vk_graph_release_all(vk_backend *be) {
    if (be->graphs) vkQueueWaitIdle(be->queue);
    while (be->graphs) {
        vk_graph *gs = be->graphs;
        be->graphs = gs->next;
        free_graph(be, gs);
    }
}
