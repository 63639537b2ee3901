<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: a return requested.
 */

namespace XLite\Module\CommerceSync\Webhooks\Module\XC\Returns\Model;

use XLite\Module\CommerceSync\Webhooks\Core\Outbox;

/**
 * X-Cart 5's REST module has no return model; the sync reads returns as
 * `xc-returns-orderreturn` (docs/systems/xcart.md §8), which by the REST module's naming
 * rule is the model XLite\Module\XC\Returns\Model\OrderReturn of a returns module. No
 * public source of that module was found (searched: the X-Cart 5.3.2 distribution, whose
 * only return model is XC\CanadaPost's ProductsReturn, and the X-Cart docs), so this
 * decorator is [INFERRED]: it applies only where that module is installed
 * (@Decorator\Depend, as X-Cart's own cross-module decorators such as
 * XC\MailChimp\Module\XC\ProductVariants\Model\ProductVariant), and assumes a Doctrine
 * entity with lifecycle callbacks and an `id`. A new return is `return.requested`.
 *
 * @Decorator\Depend ("XC\Returns")
 */
abstract class OrderReturn extends \XLite\Module\XC\Returns\Model\OrderReturn implements \XLite\Base\IDecorator
{
    /**
     * @return void
     *
     * @PostPersist
     */
    public function commerceSyncReturnRequested()
    {
        Outbox::record('return.requested', $this->getId());
    }
}
