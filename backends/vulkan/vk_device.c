/* vk_device.c - one Vulkan device: what it can do (subgroups, integer dot products, memory
 * types, host-memory import, limits), the logical device with one compute queue, and
 * one-shot command buffers for uploads and fills. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS:
        return "VK_SUCCESS";
    case VK_NOT_READY:
        return "VK_NOT_READY";
    case VK_TIMEOUT:
        return "VK_TIMEOUT";
    case VK_INCOMPLETE:
        return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
        return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
        return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED:
        return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT:
        return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
        return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:
        return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:
        return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED:
        return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
        return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE:
        return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    default:
        return "VkResult error";
    }
}

long vk_env_long(const char *name, long def) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? def : v;
}

static bool has_device_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    bool found = false;
    if (p && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

bn_status vk_query_caps(VkPhysicalDevice pd, vk_caps *c, bn_err *err) {
    memset(c, 0, sizeof *c);
    c->ext_mem_host = has_device_ext(pd, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    c->int_dot = has_device_ext(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    c->memory_budget = has_device_ext(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);

    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT emh = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT,
        .pNext = &m3};
    VkPhysicalDeviceShaderIntegerDotProductPropertiesKHR idp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES_KHR,
        .pNext = c->ext_mem_host ? (void *)&emh : (void *)&m3};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = c->int_dot ? (void *)&idp : idp.pNext};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    c->props = p2.properties;
    if (c->props.apiVersion < VK_API_VERSION_1_1)
        return bn_fail(err, BN_ERR_DEVICE, "%s supports only Vulkan %u.%u (1.1 is needed)",
                       c->props.deviceName, VK_API_VERSION_MAJOR(c->props.apiVersion),
                       VK_API_VERSION_MINOR(c->props.apiVersion));
    if (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) {
        c->subgroup_size = sg.subgroupSize;
        const VkSubgroupFeatureFlags need =
            VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
        c->subgroup_arith = (sg.supportedOperations & need) == need && sg.subgroupSize > 0;
    }
    if (c->ext_mem_host) c->import_align = emh.minImportedHostPointerAlignment;
    if (c->int_dot) {
        VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR f = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                        .pNext = &f};
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        c->int_dot = f.shaderIntegerDotProduct == VK_TRUE;
        c->int_dot_accel = idp.integerDotProduct4x8BitPackedSignedAccelerated == VK_TRUE;
    }
    VkPhysicalDeviceFeatures feat;
    vkGetPhysicalDeviceFeatures(pd, &feat);
    c->fp64 = feat.shaderFloat64 == VK_TRUE;
    vkGetPhysicalDeviceMemoryProperties(pd, &c->mem);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties q[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
    int best = -1;
    for (uint32_t i = 0; i < nq; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (best < 0 || (q[best].timestampValidBits == 0 && q[i].timestampValidBits > 0))
            best = (int)i;
    }
    if (best < 0)
        return bn_fail(err, BN_ERR_DEVICE, "%s has no compute queue", c->props.deviceName);
    c->queue_family = (uint32_t)best;
    c->timestamps = q[best].timestampValidBits > 0 && c->props.limits.timestampPeriod > 0;
    c->ts_period_ns = c->props.limits.timestampPeriod;

    const VkMemoryPropertyFlags uma = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                      VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    bool has_uma = false;
    for (uint32_t i = 0; i < c->mem.memoryTypeCount; i++)
        has_uma |= (c->mem.memoryTypes[i].propertyFlags & uma) == uma;
    c->unified = c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU && has_uma;

    VkDeviceSize mb = c->props.limits.maxStorageBufferRange;
    if (m3.maxMemoryAllocationSize && m3.maxMemoryAllocationSize < mb)
        mb = m3.maxMemoryAllocationSize;
    if (mb > ((VkDeviceSize)1 << 30)) mb = (VkDeviceSize)1 << 30; /* 32-bit index math */
    c->max_binding = mb / 256 * 256;
    c->offset_align = c->props.limits.minStorageBufferOffsetAlignment;
    if (c->offset_align < 4) c->offset_align = 4;
    return BN_OK;
}

static const char *type_word(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "CPU";
    default:
        return "other";
    }
}

void vk_caps_details(const vk_caps *c, char *buf, size_t len) {
    char heaps[96] = "";
    size_t hl = 0;
    for (uint32_t i = 0; i < c->mem.memoryHeapCount && hl + 24 < sizeof heaps; i++) {
        bool dl = c->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        int w = snprintf(heaps + hl, sizeof heaps - hl, "%s%.1f GiB%s", i ? "+" : "",
                         (double)c->mem.memoryHeaps[i].size / (1 << 30), dl ? " dev" : " host");
        if (w > 0) hl += (size_t)w;
    }
#ifdef BITNET_VK_INT_DOT_BUILT
    const char *dot_build = "";
#else
    const char *dot_build = ", not in shaders";
#endif
    snprintf(buf, len, "%s, Vulkan %u.%u.%u; subgroup %u%s; int dot %s%s; fp64 %s; heaps %s%s%s",
             type_word(c->props.deviceType), VK_API_VERSION_MAJOR(c->props.apiVersion),
             VK_API_VERSION_MINOR(c->props.apiVersion), VK_API_VERSION_PATCH(c->props.apiVersion),
             c->subgroup_size, c->subgroup_arith ? " arith" : "",
             c->int_dot ? (c->int_dot_accel ? "yes (fast)" : "yes (slow)") : "no", dot_build,
             c->fp64 ? "yes" : "no", heaps, c->unified ? "; unified" : "",
             c->ext_mem_host ? "; host import" : "");
}

bn_status vk_device_create(vk_backend *be, bn_err *err) {
    const char *exts[4];
    uint32_t n_ext = 0;
    /* VK_KHR_external_memory, which it needs, is core in Vulkan 1.1 */
    if (be->allow_import) exts[n_ext++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
        .shaderIntegerDotProduct = VK_TRUE};
    bool dot = be->use_int_dot;
    if (dot) exts[n_ext++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = dot ? &idf : NULL};
    f2.features.shaderFloat64 = be->use_fp64 ? VK_TRUE : VK_FALSE;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = be->caps.queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &f2,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateDevice(be->pd, &ci, NULL, &be->dev);
    if (r != VK_SUCCESS) {
        be->dev = VK_NULL_HANDLE;
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: vkCreateDevice failed: %s", be->base.device,
                       vk_result_name(r));
    }
    vkGetDeviceQueue(be->dev, be->caps.queue_family, 0, &be->queue);
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = be->caps.queue_family};
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateCommandPool(be->dev, &pi, NULL, &be->cmd_pool)) != VK_SUCCESS ||
        (r = vkCreateFence(be->dev, &fi, NULL, &be->fence)) != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: cannot create a command pool: %s",
                       be->base.device, vk_result_name(r));
    return BN_OK;
}

void vk_device_destroy(vk_backend *be) {
    if (!be->dev) return;
    vkDeviceWaitIdle(be->dev);
    if (be->fence) vkDestroyFence(be->dev, be->fence, NULL);
    if (be->cmd_pool) vkDestroyCommandPool(be->dev, be->cmd_pool, NULL);
    vkDestroyDevice(be->dev, NULL);
    be->dev = VK_NULL_HANDLE;
}

bn_status vk_oneshot_begin(vk_backend *be, VkCommandBuffer *cb, bn_err *err) {
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = be->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkResult r = vkAllocateCommandBuffers(be->dev, &ai, cb);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan: cannot allocate a command buffer: %s",
                       vk_result_name(r));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    vkBeginCommandBuffer(*cb, &bi);
    return BN_OK;
}

bn_status vk_submit_wait(vk_backend *be, VkCommandBuffer cb, bn_err *err) {
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = cb ? 1 : 0,
                       .pCommandBuffers = &cb};
    VkResult r = vkQueueSubmit(be->queue, 1, &si, be->fence);
    if (r == VK_SUCCESS) r = vkWaitForFences(be->dev, 1, &be->fence, VK_TRUE, UINT64_MAX);
    vkResetFences(be->dev, 1, &be->fence);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: queue submission failed: %s",
                       be->base.device, vk_result_name(r));
    return BN_OK;
}

bn_status vk_oneshot_submit(vk_backend *be, VkCommandBuffer cb, bn_err *err) {
    vkEndCommandBuffer(cb);
    bn_status st = vk_submit_wait(be, cb, err);
    vkFreeCommandBuffers(be->dev, be->cmd_pool, 1, &cb);
    return st;
}
