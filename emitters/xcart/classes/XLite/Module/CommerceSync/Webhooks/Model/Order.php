<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: order placed, status changed, cancelled.
 */

namespace XLite\Module\CommerceSync\Webhooks\Model;

use XLite\Module\CommerceSync\Webhooks\Core\Outbox;

/**
 * Hooks of XLite\Model\Order (X-Cart 5.3.2 classes/XLite/Model/Order.php). The storefront
 * order (XLite\Model\Cart) extends it, so the checkout goes through these too.
 */
abstract class Order extends \XLite\Model\Order implements \XLite\Base\IDecorator
{
    /**
     * "Called when an order successfully placed by a client" (Order::processSucceed; the
     * checkout controller calls it, Controller/Customer/Checkout.php, and modules such as
     * CDev\Coupons and CDev\Egoods decorate it the same way): `order.created`.
     *
     * @return void
     */
    public function processSucceed()
    {
        parent::processSucceed();

        Outbox::record('order.created', $this->getOrderId());
    }

    /**
     * Order::checkStatuses runs after each insert and update (@PostPersist, @PostUpdate,
     * repeated here because Doctrine reads the annotation of the overriding method). It
     * compares the payment and shipping statuses set by setPaymentStatus /
     * setShippingStatus (Order::processStatus) with the ones before, registers the change
     * in the order history, runs the status handlers (processCancel, ...) and answers
     * whether a status changed. A change becomes `order.cancelled` when the payment
     * status became Cancelled (`C`, XLite\Model\Order\Status\Payment::STATUS_CANCELED,
     * what the sandbox's cancel sets), `order.updated` otherwise. Carts (no order number
     * yet) report nothing.
     *
     * @return boolean
     *
     * @PostPersist
     * @PostUpdate
     */
    public function checkStatuses()
    {
        $before = $this->oldPaymentStatus ? $this->oldPaymentStatus->getCode() : null;

        $changed = parent::checkStatuses();

        if ($changed && $this->getOrderNumber()) {
            $cancelled = \XLite\Model\Order\Status\Payment::STATUS_CANCELED === $this->getPaymentStatusCode()
                && \XLite\Model\Order\Status\Payment::STATUS_CANCELED !== $before;
            Outbox::record($cancelled ? 'order.cancelled' : 'order.updated', $this->getOrderId());
        }

        return $changed;
    }
}
