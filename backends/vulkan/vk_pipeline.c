/* vk_pipeline.c - compute pipelines from the SPIR-V embedded at build time.
 *
 * Every shader uses one descriptor set layout (VK_MAX_BINDINGS storage buffers) and one
 * push-constant range of VK_PUSH_BYTES, so all pipelines share one pipeline layout. A
 * pipeline is the shader variant this device should run (subgroup reductions when it has
 * subgroup arithmetic in compute shaders; integer dot products when both the build and
 * the device have them; double precision where the CPU reference uses double, when the
 * device has shaderFloat64) with specialization constants 0..n-1 (workgroup size first); it
 * is created on first use and kept, with a VkPipelineCache, for the backend's lifetime,
 * so graphs of new shapes do not pay for compilation again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

bn_status vk_pipelines_init(vk_backend *be, bn_err *err) {
    VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
    for (int i = 0; i < VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType =
                                              VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = VK_MAX_BINDINGS,
                                          .pBindings = b};
    VkResult r = vkCreateDescriptorSetLayout(be->dev, &li, NULL, &be->dsl);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot create a descriptor set layout: %s",
                       vk_result_name(r));
    VkPushConstantRange pr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &be->dsl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pr};
    r = vkCreatePipelineLayout(be->dev, &pi, NULL, &be->layout);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot create a pipeline layout: %s",
                       vk_result_name(r));
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if (vkCreatePipelineCache(be->dev, &ci, NULL, &be->pcache) != VK_SUCCESS)
        be->pcache = VK_NULL_HANDLE;
    return BN_OK;
}

void vk_pipelines_destroy(vk_backend *be) {
    for (int i = 0; i < be->n_pipes; i++) vkDestroyPipeline(be->dev, be->pipes[i].pipe, NULL);
    free(be->pipes);
    be->pipes = NULL;
    be->n_pipes = be->cap_pipes = 0;
    if (be->pcache) vkDestroyPipelineCache(be->dev, be->pcache, NULL);
    if (be->layout) vkDestroyPipelineLayout(be->dev, be->layout, NULL);
    if (be->dsl) vkDestroyDescriptorSetLayout(be->dev, be->dsl, NULL);
    be->pcache = VK_NULL_HANDLE;
    be->layout = VK_NULL_HANDLE;
    be->dsl = VK_NULL_HANDLE;
}

static const bn_vk_shader_blob *find_blob(const char *name, int flags) {
    for (const bn_vk_shader_blob *s = bn_vk_shader_table; s->name; s++)
        if (!strcmp(s->name, name) && s->flags == flags) return s;
    return NULL;
}

bool vk_shader_has(const char *name, int flags) {
    return find_blob(name, flags) != NULL;
}

/* A compute pipeline of one shader blob with specialization constants 0..n_spec-1. */
static VkResult create(vk_backend *be, const bn_vk_shader_blob *blob, const uint32_t *spec,
                       int n_spec, VkPipeline *out) {
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = blob->size,
                                   .pCode = blob->code};
    VkShaderModule mod;
    VkResult r = vkCreateShaderModule(be->dev, &mi, NULL, &mod);
    if (r != VK_SUCCESS) return r;
    VkSpecializationMapEntry me[8];
    for (int i = 0; i < n_spec; i++)
        me[i] = (VkSpecializationMapEntry){
            .constantID = (uint32_t)i, .offset = (uint32_t)(4 * i), .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)n_spec,
                               .pMapEntries = me,
                               .dataSize = 4 * (size_t)n_spec,
                               .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = n_spec ? &si : NULL},
        .layout = be->layout};
    *out = VK_NULL_HANDLE;
    r = vkCreateComputePipelines(be->dev, be->pcache, 1, &ci, NULL, out);
    vkDestroyShaderModule(be->dev, mod, NULL);
    return r;
}

bn_status vk_pipeline_get(vk_backend *be, const char *name, const uint32_t *spec, int n_spec,
                          VkPipeline *out, bn_err *err) {
    for (int i = 0; i < be->n_pipes; i++) {
        const vk_pipeline *p = &be->pipes[i];
        if (p->n_spec == n_spec && !strcmp(p->name, name) &&
            !memcmp(p->spec, spec, sizeof(uint32_t) * (size_t)n_spec)) {
            *out = p->pipe;
            return BN_OK;
        }
    }
    int flags = 0;
    if (be->use_subgroup && find_blob(name, VK_SHADER_SUBGROUP)) flags |= VK_SHADER_SUBGROUP;
    if (be->use_fp64 && find_blob(name, flags | VK_SHADER_FP64)) flags |= VK_SHADER_FP64;
    if (be->int_dot_emulated &&
        find_blob(name, flags | VK_SHADER_INT_DOT | VK_SHADER_INT_DOT_EMULATED))
        flags |= VK_SHADER_INT_DOT | VK_SHADER_INT_DOT_EMULATED;
    else if (be->use_int_dot && find_blob(name, flags | VK_SHADER_INT_DOT))
        flags |= VK_SHADER_INT_DOT;
    const bn_vk_shader_blob *blob = find_blob(name, flags);
    if (!blob)
        return bn_fail(err, BN_ERR_UNSUPPORTED, "vulkan: shader '%s' is not in this build", name);
    if (n_spec > 8) n_spec = 8;
    if (be->n_pipes == be->cap_pipes) {
        int nc = be->cap_pipes ? be->cap_pipes * 2 : 32;
        vk_pipeline *p = realloc(be->pipes, (size_t)nc * sizeof *p);
        if (!p) return bn_fail(err, BN_ERR_OOM, "out of memory");
        be->pipes = p;
        be->cap_pipes = nc;
    }
    VkResult r = create(be, blob, spec, n_spec, &be->pipes[be->n_pipes].pipe);
    if (r != VK_SUCCESS && (flags & VK_SHADER_INT_DOT) && !(flags & VK_SHADER_INT_DOT_EMULATED)) {
        /* a driver that advertises the extension but fails on it: packed arithmetic instead */
        fprintf(stderr,
                "warning: vulkan:%d: the integer-dot variant of '%s' failed (%s); using "
                "packed integer arithmetic\n",
                be->base.device, name, vk_result_name(r));
        be->use_int_dot = false;
        blob = find_blob(name, flags & ~VK_SHADER_INT_DOT);
        r = blob ? create(be, blob, spec, n_spec, &be->pipes[be->n_pipes].pipe) : r;
    }
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot create the pipeline of '%s': %s", name,
                       vk_result_name(r));
    vk_pipeline *p = &be->pipes[be->n_pipes];
    memset(p->name, 0, sizeof p->name);
    snprintf(p->name, sizeof p->name, "%s", name);
    memcpy(p->spec, spec, sizeof(uint32_t) * (size_t)n_spec);
    p->n_spec = n_spec;
    be->n_pipes++;
    *out = p->pipe;
    return BN_OK;
}
